/*
 * metrics.h - the Prometheus text exposition of /metrics, read from the
 * shared admission region (all workers, alive and retired).
 */
#ifndef ECH3_METRICS_H
#define ECH3_METRICS_H

#include <stddef.h>

struct adm;

/* Renders every metric into a malloc'd string (*len bytes). NULL when
 * out of memory. */
char *metrics_render(const struct adm *a, size_t *len);

#endif
