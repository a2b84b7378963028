/*
 * principal.h - role, principal and peer certificate: the types every layer shares.
 * What it owns and must never do: principal.c.
 */
#ifndef REFD_PRINCIPAL_H
#define REFD_PRINCIPAL_H

/* Roles, as a mask: a route lists the roles that may call it. */
enum role {
	ROLE_NONE = 0,
	ROLE_OFFICE = 1 << 0,
	ROLE_WORKER = 1 << 1,
	ROLE_SUPERVISOR = 1 << 2,
	ROLE_ADMIN = 1 << 3,
};
const char *role_to_str(enum role r);

/* The verified client certificate presented in the TLS handshake, if any. */
struct peer_cert {
	int present;
	char fingerprint[65];   /* lowercase hex SHA-256 of the DER certificate */
	char subject[256];      /* RFC 2253 one-line subject */
};

/* Who is calling, as resolved by auth.c from a bearer token or the cert. */
struct principal {
	enum role role;
	char id[37];            /* uuid of the office/worker/supervisor/admin subject */
	char org_id[37];        /* organisation (worker, supervisor), "" otherwise */
	int programme_scope;    /* supervisor scoped to the whole programme */
	char token_id[37];      /* token used, "" for certificate auth */
	char credential_id[72]; /* the audit's name of the credential: token id or "cert:" + fingerprint */
};

#endif
