/* Base64 decoding (RFC 4648) for images sent inside JSON. */
#ifndef UTIL_BASE64_H
#define UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that decoding n characters can produce at most. */
#define BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)

/* Standard or URL-safe alphabet; padding optional, but when present it
 * completes the last group of four; spaces and line breaks are skipped
 * (encoders that wrap lines). out holds BASE64_DECODED_MAX(n) bytes.
 * Returns the decoded length, or -1 on a bad character or length. */
long base64_decode(const char *in, size_t n, uint8_t *out);

#endif
