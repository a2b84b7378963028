/*
 * webhook_receiver.c - a small HTTPS endpoint for webhooks.bats.
 *
 *   webhook_receiver CERT KEY DIR [PORT]
 *
 * Listens on 127.0.0.1:PORT (default: a free port), writes the port to
 * DIR/port once listening,
 * serves TLS with CERT/KEY, and records every request as DIR/N.body (the raw
 * body) and then DIR/N.head (method and URI, "@ <unix time with microseconds>" of receipt, then
 * one "Name: value" line per header), N counting from 1; the .head file appears last and atomically, so
 * a test that sees it can read both. The answer's status is the number in
 * DIR/status when that file exists (e.g. 500), else 200; when DIR/delay holds a
 * number of milliseconds, the answer waits that long after the request was
 * recorded (blocking: this receiver serves tests one request at a time);
 * when DIR/answer_size holds a number, the answer carries that many bytes.
 * SIGTERM/SIGINT end it.
 *
 * Owns: only its listener and its output directory.
 * Must never: be used outside tests (it trusts everything it receives).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *dir;
static int seq;

static int rx_write(const char *path, const void *data, size_t len)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* The number in DIR/NAME, or def. */
static int rx_number(const char *name, int def)
{
	char path[4096];
	FILE *f;
	int v = def;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = def;
		fclose(f);
	}
	return v;
}

static void rx_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	struct evbuffer *head = evbuffer_new();
	char path[4096];
	size_t len = evbuffer_get_length(in);
	unsigned char *body = evbuffer_pullup(in, -1);
	const char *method;
	int st = rx_number("status", 200), delay = rx_number("delay", 0);
	int answer = rx_number("answer_size", 0);
	struct evbuffer *out = NULL;
	struct timeval now;

	(void)arg;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_POST: method = "POST"; break;
	case EVHTTP_REQ_GET: method = "GET"; break;
	case EVHTTP_REQ_PUT: method = "PUT"; break;
	default: method = "OTHER"; break;
	}
	seq++;
	evbuffer_add_printf(head, "%s %s\n", method, evhttp_request_get_uri(req));
	gettimeofday(&now, NULL);
	evbuffer_add_printf(head, "@ %ld.%06ld\n", (long)now.tv_sec, (long)now.tv_usec);
	for (kv = h->tqh_first; kv; kv = kv->next.tqe_next)
		evbuffer_add_printf(head, "%s: %s\n", kv->key, kv->value);
	snprintf(path, sizeof(path), "%s/%d.body", dir, seq);
	rx_write(path, body ? (const char *)body : "", len);
	snprintf(path, sizeof(path), "%s/%d.head", dir, seq);
	rx_write(path, evbuffer_pullup(head, -1), evbuffer_get_length(head));
	evbuffer_free(head);
	if (st < 100 || st > 599)
		st = 200;
	if (delay > 0)
		usleep((useconds_t)delay * 1000);
	if (answer > 0) {
		char chunk[1024];

		memset(chunk, 'x', sizeof(chunk));
		out = evbuffer_new();
		for (int i = 0; out && i < answer; i += (int)sizeof(chunk))
			evbuffer_add(out, chunk, (size_t)(answer - i) < sizeof(chunk) ?
						 (size_t)(answer - i) : sizeof(chunk));
	}
	evhttp_send_reply(req, st, st == 200 ? "OK" : "Test", out);
	if (out)
		evbuffer_free(out);
}

static struct bufferevent *rx_bevcb(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(arg);

	/* Never NULL: evhttp would then speak plaintext. Abort instead. */
	if (!ssl)
		abort();
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void rx_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *s1, *s2;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	SSL_CTX *ctx;
	char path[4096], port[16];

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s CERT KEY DIR [PORT]\n", argv[0]);
		return 2;
	}
	dir = argv[3];
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	base = event_base_new();
	http = evhttp_new(base);
	evhttp_set_bevcb(http, rx_bevcb, ctx);
	evhttp_set_gencb(http, rx_request, NULL);
	evhttp_set_timeout(http, 10);
	bound = evhttp_bind_socket_with_handle(http, "127.0.0.1",
					       argc == 5 ? (unsigned short)atoi(argv[4]) : 0);
	if (!bound) {
		perror("bind");
		return 1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &slen) < 0) {
		perror("getsockname");
		return 1;
	}
	snprintf(port, sizeof(port), "%d\n", ntohs(sin.sin_port));
	snprintf(path, sizeof(path), "%s/port", dir);
	if (rx_write(path, port, strlen(port)) < 0) {
		perror("port file");
		return 1;
	}
	s1 = evsignal_new(base, SIGTERM, rx_stop, base);
	s2 = evsignal_new(base, SIGINT, rx_stop, base);
	evsignal_add(s1, NULL);
	evsignal_add(s2, NULL);
	event_base_dispatch(base);
	event_free(s1);
	event_free(s2);
	evhttp_free(http);
	event_base_free(base);
	SSL_CTX_free(ctx);
	return 0;
}
