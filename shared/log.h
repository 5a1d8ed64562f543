/*
 * log.h - the logger every ech3 process uses.
 *
 * One line per event, written with a single write(2) so lines from
 * threads and processes never interleave. Two formats: human text for
 * terminals and JSON lines for collectors. stderr by default, or a file
 * that can be reopened (SIGUSR1). Callers never pass secrets here.
 */
#ifndef ECH3_LOG_H
#define ECH3_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON = 1 };

/* Sets level and format; safe to call again on reload. */
void log_configure(enum log_level level, enum log_format format);

/* Opens (or reopens) path for appending; NULL or "" means stderr.
 * Returns 0, or -1 with errno set (the old destination stays). */
int log_open(const char *path);

/* Name shown for this process ("master", "worker"). */
void log_set_role(const char *role);

int log_enabled(enum log_level level);

/* conn may be NULL; otherwise the short connection id of a tunnel. */
void log_msg(enum log_level level, const char *conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *conn, const char *fmt,
              va_list ap);

#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (log_enabled(LOG_DEBUG))                                   \
			log_msg(LOG_DEBUG, NULL, __VA_ARGS__);                \
	} while (0)

/* Logs at error level and exits the process with status 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);

#endif
