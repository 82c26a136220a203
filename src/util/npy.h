/* NumPy .npy files of float32 (what np.save writes): C order,
 * little-endian '<f4', format versions 1.0 to 3.0. */
#ifndef UTIL_NPY_H
#define UTIL_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_RANK 8

typedef struct npy_array {
    int rank;
    int64_t dims[NPY_MAX_RANK];
    size_t count; /* product of dims */
    float *data;  /* malloc'd */
} npy_array_t;

/* Reads path into arr. On error returns -1 with a message in msg and
 * leaves arr empty. Anything but a C-order little-endian float32 array is
 * refused with a message saying what it is. */
int npy_read(const char *path, npy_array_t *arr, char *msg, size_t msg_size);
/* Parses an in-memory .npy image (same rules). */
int npy_parse(const void *buf, size_t size, npy_array_t *arr, char *msg,
              size_t msg_size);
/* Writes a float32 array; returns -1 with msg on error. */
int npy_write(const char *path, const float *data, int rank,
              const int64_t *dims, char *msg, size_t msg_size);
void npy_free(npy_array_t *arr);

#endif
