/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging for programs (pxcached, benchmarks).  The library never
 * prints; programs do, through these macros.  A message above the
 * compile-time CONFIG_PX_LOG_LEVEL is compiled out; one above the runtime
 * level (log_set_level, pxcached's -v) is skipped before any formatting.
 */
#ifndef PX_APP_LOG_H
#define PX_APP_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

extern int log_level;

void log_set_level(int level);
__attribute__((format(printf, 2, 3))) void
log_write(int level, const char *fmt, ...);

#define LOG_AT(lvl, ...)                                                \
	do {                                                            \
		if ((lvl) <= CONFIG_PX_LOG_LEVEL && (lvl) <= log_level) \
			log_write((lvl), __VA_ARGS__);                  \
	} while (0)

#define LOG_ERROR(...)  LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...)   LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_NOTICE(...) LOG_AT(LOG_LVL_NOTICE, __VA_ARGS__)
#define LOG_INFO(...)   LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...)  LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
