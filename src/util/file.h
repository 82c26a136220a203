/* Whole-file reading, shared by the model loader and the .npy reader. */
#ifndef UTIL_FILE_H
#define UTIL_FILE_H

#include <stddef.h>

/* Reads the regular file at path into a malloc'd buffer (*data, *size).
 * Returns 0, or a negative errno (EISDIR for a non-regular file) with
 * nothing allocated. */
int util_read_file(const char *path, void **data, size_t *size);

#endif
