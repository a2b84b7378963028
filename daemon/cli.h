/*
 * cli.h - one-shot command-line actions run by main.c instead of the daemon:
 * minting the first admin token and verifying the audit hash chain.
 *
 * Owns: nothing between calls; each function connects, acts and disconnects.
 * Must never: run inside the event loop (blocking libpq is fine here only);
 * print anything but the token itself on stdout; log the token.
 */
#ifndef REFD_CLI_H
#define REFD_CLI_H

struct config;
struct audit_signer;

/* Create an admin subject NAME and a bearer token for it; print the token
 * once on stdout. Returns the process exit code (0 = ok). */
struct keyring;
int cli_mint_admin_token(const struct config *cfg, const struct keyring *keys, const char *name);

/* Walk the sealed audit chain; report the first altered, inserted or removed
 * record with its position, and unsealed records older than [audit]
 * max_unsealed_age. With head_file, also prove the chain holds that signed
 * head (signature checked with signer when its key id matches). Returns the
 * process exit code (0 = chain intact). */
int cli_verify_audit(const struct config *cfg, const struct audit_signer *signer,
		     const char *head_file);

#endif
