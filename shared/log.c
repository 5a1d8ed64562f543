/*
 * log.c - owns the log destination, level and format of this process.
 *
 * The destination is always file descriptor 2: a log file is dup2()'d onto
 * it, so a reopen swaps files atomically under running threads and anything
 * a library prints to stderr lands in the same place.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>


static atomic_int log_level = LOG_INFO;
static atomic_int log_format = LOG_FMT_TEXT;
static const char *log_role = "master";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_configure(enum log_level level, enum log_format format)
{
	atomic_store(&log_level, (int)level);
	atomic_store(&log_format, (int)format);
}

int log_open(const char *path)
{
	int fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void log_set_role(const char *role)
{
	log_role = role;
}

int log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return LOG_WARN;
	return -1;
}

int log_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return LOG_FMT_TEXT;
	if (strcmp(s, "json") == 0)
		return LOG_FMT_JSON;
	return -1;
}

static size_t format_time(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, size - n, ".%03ldZ",
			      (long)(tv.tv_usec / 1000));
	return n;
}

/* Appends s to buf as the inside of a JSON string; returns new length. */
static size_t json_escape(char *buf, size_t len, size_t size, const char *s)
{
	for (; *s != '\0' && len + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			len += (size_t)snprintf(buf + len, size - len,
						"\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

/* Replaces control characters so one event stays one line. */
static void sanitize_text(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void write_line(const char *line, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

/* The text line is formatted in one buffer (a shallow stack matters:
 * every connection thread logs, and touched stack pages stay resident). */
static void __attribute__((noinline))
text_line(enum log_level level, const char *conn, const char *fmt,
	  va_list ap)
{
	char line[1536], ts[40];
	size_t n, start;

	format_time(ts, sizeof(ts));
	n = (size_t)snprintf(line, sizeof(line), "%s %s ech3[%ld]: %s%s%s", ts,
			     level_names[level], (long)getpid(),
			     conn != NULL ? "c=" : "", conn != NULL ? conn : "",
			     conn != NULL ? " " : "");
	start = n;
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	sanitize_text(line + start);
	n = strlen(line);
	line[n++] = '\n';
	write_line(line, n);
}

static void __attribute__((noinline))
json_line(enum log_level level, const char *conn, const char *fmt,
	  va_list ap)
{
	char msg[1024], line[1536], ts[40];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	format_time(ts, sizeof(ts));
	n = (size_t)snprintf(line, sizeof(line),
		"{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,"
		"\"role\":\"%s\",", ts, level_names[level],
		(long)getpid(), log_role);
	if (conn != NULL)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      "\"conn\":\"%s\",", conn);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\"msg\":\"");
	n = json_escape(line, n, sizeof(line) - 3, msg);
	line[n++] = '"';
	line[n++] = '}';
	line[n++] = '\n';
	write_line(line, n);
}

void log_vmsg(enum log_level level, const char *conn, const char *fmt,
	      va_list ap)
{
	int saved = errno;

	if (!log_enabled(level))
		return;
	if (atomic_load(&log_format) == LOG_FMT_JSON)
		json_line(level, conn, fmt, ap);
	else
		text_line(level, conn, fmt, ap);
	errno = saved;
}

void log_msg(enum log_level level, const char *conn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, conn, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
