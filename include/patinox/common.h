/* SPDX-License-Identifier: MIT */
/*
 * Definitions shared by every public header: symbol visibility and the
 * library version.  The library is built with -fvisibility=hidden; only
 * declarations marked PX_API are exported from libpatinox.so.
 */
#ifndef PATINOX_COMMON_H
#define PATINOX_COMMON_H

#define PX_API            __attribute__((visibility("default")))

#define PX_VERSION_MAJOR  0
#define PX_VERSION_MINOR  1
#define PX_VERSION_PATCH  0
#define PX_VERSION_STRING "0.1.0"

/* Returns the library's version string, for example "0.1.0". */
PX_API const char *px_version(void);

#endif
