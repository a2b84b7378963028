/*
 * log.c - one line per event on stderr, logfmt or JSON lines.
 *
 * Owns: the process-wide level and format (set at start and on SIGHUP, from
 * the event loop only), the line layout (ts, level, event, request id, then
 * the caller's pairs) and the escaping that keeps one event on one line.
 * Must never: be handed client data (callers pass identifiers, counts, route
 * names and outcomes only); write a line in more than one write(2) when it
 * can be avoided; allocate on the common path.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The one piece of process-wide state this header allows. */
static enum log_level cur_level = LOG_INFO;
static enum log_format cur_format = LOG_FMT_LOGFMT;
/* stderr is the journal's stream: each line starts with its syslog
 * priority (<3> error ... <7> debug), which journald strips and records. */
static int to_journal;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* $JOURNAL_STREAM is "<device>:<inode>" of the stream systemd connected;
 * it counts only while stderr is still that very stream. */
static int log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level level, enum log_format fmt)
{
	to_journal = log_stderr_is_journal();
	if ((int)level >= LOG_DEBUG && level <= LOG_ERROR)
		cur_level = level;
	cur_format = fmt == LOG_FMT_JSON ? LOG_FMT_JSON : LOG_FMT_LOGFMT;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

int log_enabled(enum log_level level)
{
	return level >= cur_level;
}

const char *log_esc(char *buf, unsigned long n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned long w = 0;

	if (n == 0)
		return buf;
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char tmp[4];
		unsigned long len;

		if (ch == '"' || ch == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)ch;
			len = 2;
		} else if (ch == '\n') {
			memcpy(tmp, "\\n", 2);
			len = 2;
		} else if (ch == '\t') {
			memcpy(tmp, "\\t", 2);
			len = 2;
		} else if (ch < 0x20 || ch >= 0x7f) {
			/* Control and non-ASCII bytes as \xNN: the log stays ASCII and
			 * one line whatever arrives. */
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[ch >> 4];
			tmp[3] = hex[ch & 15];
			len = 4;
		} else {
			tmp[0] = (char)ch;
			len = 1;
		}
		if (w + len >= n)
			break;
		memcpy(buf + w, tmp, len);
		w += len;
	}
	buf[w] = '\0';
	return buf;
}

/* A growable line; starts on the stack, moves to the heap only for long lines. */
struct line {
	char *p;
	size_t len, cap;
	int heap;
	int oom;
};

static void line_put(struct line *l, const char *s, size_t n)
{
	if (l->oom)
		return;
	if (l->len + n + 1 > l->cap) {
		size_t cap = l->cap * 2;
		char *np;

		while (cap < l->len + n + 1)
			cap *= 2;
		np = l->heap ? realloc(l->p, cap) : malloc(cap);
		if (!np) {
			l->oom = 1;
			return;
		}
		if (!l->heap)
			memcpy(np, l->p, l->len);
		l->p = np;
		l->cap = cap;
		l->heap = 1;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
	l->p[l->len] = '\0';
}

static void line_puts(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

/* Bytes that would break the one-line rule become '?' in logfmt mode. */
static void line_put_safe(struct line *l, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if ((unsigned char)ch < 0x20 || ch == 0x7f)
			ch = '?';
		line_put(l, &ch, 1);
	}
}

/* JSON string body for n bytes of s (no quotes added). */
static void line_put_json(struct line *l, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };

			line_put(l, e, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			/* Non-ASCII too: log lines must stay valid JSON whatever the
			 * bytes, and callers never have a reason to log text. */
			char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

			line_put(l, e, 6);
		} else {
			line_put(l, (const char *)&ch, 1);
		}
	}
}

static int looks_numeric(const char *s, size_t n)
{
	size_t i = 0;
	int digits = 0;

	if (n == 0)
		return 0;
	if (s[i] == '-')
		i++;
	if (i < n && s[i] == '0' && i + 1 < n && s[i + 1] != '.')
		return 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.') {
		i++;
		if (i == n)
			return 0;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	}
	return digits > 0 && i == n && n < 20;
}

/*
 * Turn the caller's logfmt pairs into JSON members. A value is either a bare
 * token (up to the next space) or "quoted" with backslash escapes as written
 * by log_esc(). The escape sequences are kept as they are (valid in JSON
 * except \xNN, whose backslash is doubled), so nothing is lost.
 */
static void kv_to_json(struct line *l, const char *kv)
{
	const char *p = kv;

	while (*p) {
		const char *k, *v, *eq;
		size_t klen;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		k = p;
		while (*p && *p != ' ' && *p != '=')
			p++;
		eq = p;
		klen = (size_t)(eq - k);
		if (*eq != '=') {
			/* A word without '=': keep it as a "msg" member. */
			line_puts(l, ",\"msg\":\"");
			line_put_json(l, k, klen);
			line_puts(l, "\"");
			continue;
		}
		line_puts(l, ",\"");
		line_put_json(l, k, klen);
		line_puts(l, "\":");
		v = ++p;
		if (*v == '"') {
			line_puts(l, "\"");
			for (p = v + 1; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] && strchr("\"\\nt", p[1])) {
					line_put(l, p, 2);
					p++;
					continue;
				}
				if (*p == '\\') {
					/* \xNN and anything else: a literal backslash */
					line_puts(l, "\\\\");
					continue;
				}
				line_put_json(l, p, 1);
			}
			if (*p == '"')
				p++;
			line_puts(l, "\"");
		} else {
			while (*p && *p != ' ')
				p++;
			if (looks_numeric(v, (size_t)(p - v))) {
				line_put(l, v, (size_t)(p - v));
			} else {
				line_puts(l, "\"");
				line_put_json(l, v, (size_t)(p - v));
				line_puts(l, "\"");
			}
		}
	}
}

/* A field of the line's head, escaped for the format: "key":"val" (JSON,
 * after a comma) or key=val (logfmt, after a space); first: no separator. */
static void line_field(struct line *l, int json, int first, const char *key, const char *val)
{
	if (!first)
		line_puts(l, json ? "," : " ");
	if (json) {
		line_puts(l, "\"");
		line_puts(l, key);
		line_puts(l, "\":\"");
		line_put_json(l, val, strlen(val));
		line_puts(l, "\"");
	} else {
		line_puts(l, key);
		line_puts(l, "=");
		line_put_safe(l, val, strlen(val));
	}
}

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report a failing stderr */
		}
		p += w;
		n -= (size_t)w;
	}
}

static void format_ts(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void log_event(enum log_level level, const char *reqid, const char *event, const char *kvfmt,
	       ...)
{
	char stackbuf[2048], kvstack[1024], ts[96];
	char *kv = kvstack;
	struct line l = { stackbuf, 0, sizeof(stackbuf), 0, 0 };
	const char *lvl;
	va_list ap;
	int n, json;

	if (!log_enabled(level))
		return;
	lvl = level_names[level <= LOG_ERROR ? level : LOG_ERROR];
	stackbuf[0] = '\0';
	if (to_journal) {
		static const char *const prio[] = { "<7>", "<6>", "<4>", "<3>" };

		line_puts(&l, prio[level <= LOG_ERROR ? level : LOG_ERROR]);
	}

	va_start(ap, kvfmt);
	n = kvfmt ? vsnprintf(kvstack, sizeof(kvstack), kvfmt, ap) : 0;
	va_end(ap);
	if (n < 0) {
		kvstack[0] = '\0';
	} else if ((size_t)n >= sizeof(kvstack)) {
		kv = malloc((size_t)n + 1);
		if (kv) {
			va_start(ap, kvfmt);
			vsnprintf(kv, (size_t)n + 1, kvfmt, ap);
			va_end(ap);
		} else {
			kv = kvstack; /* truncated, still one line */
		}
	} else if (!kvfmt) {
		kvstack[0] = '\0';
	}
	format_ts(ts, sizeof(ts));
	if (!event)
		event = "-";

	json = cur_format == LOG_FMT_JSON;
	if (json)
		line_puts(&l, "{");
	/* ts and level are plain ASCII: escaping leaves them as they are. */
	line_field(&l, json, 1, "ts", ts);
	line_field(&l, json, 0, "level", lvl);
	line_field(&l, json, 0, "event", event);
	if (reqid && *reqid)
		line_field(&l, json, 0, "request_id", reqid);
	if (json) {
		kv_to_json(&l, kv);
		line_puts(&l, "}\n");
	} else {
		if (*kv) {
			line_puts(&l, " ");
			line_put_safe(&l, kv, strlen(kv));
		}
		line_puts(&l, "\n");
	}
	if (l.oom) {
		/* Keep what fitted, ending the line so the next event starts clean. */
		if (l.len > 0 && l.p[l.len - 1] != '\n') {
			if (l.len == l.cap - 1)
				l.len--;
			l.p[l.len++] = '\n';
		}
	}
	write_all(l.p, l.len);
	if (l.heap)
		free(l.p);
	if (kv != kvstack)
		free(kv);
}
