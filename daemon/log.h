/*
 * log.h - one line per event on stderr, logfmt or JSON.
 * What it owns and must never do: log.c.
 */
#ifndef REFD_LOG_H
#define REFD_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FMT_LOGFMT = 0, LOG_FMT_JSON };

void log_setup(enum log_level level, enum log_format fmt);
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level level);

/*
 * log_event(LOG_INFO, reqid_or_NULL, "listen", "addr=%s port=%d", ...)
 * The kv format is "key=value key2=value2" (logfmt). In JSON mode each pair
 * becomes a JSON member. Values containing spaces or quotes are quoted by the
 * caller with log_quote() when they are not simple tokens.
 */
void log_event(enum log_level level, const char *reqid, const char *event,
	       const char *kvfmt, ...) __attribute__((format(printf, 4, 5)));

/* Copy s into buf (size n) with quotes, backslashes and control characters
 * replaced, so a value can be written as key="%s". Returns buf. */
const char *log_esc(char *buf, unsigned long n, const char *s);

#define log_debug(ev, ...) log_event(LOG_DEBUG, NULL, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, NULL, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, NULL, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, NULL, ev, __VA_ARGS__)

#endif
