/* Checks a real answer of the daemon against openapi.yaml with
 * tests/tools/check_openapi.py (Python 3 with python3-yaml and
 * python3-jsonschema). Tests run from the top of the repository. */
#ifndef TEST_OPENAPI_H
#define TEST_OPENAPI_H

#include <stddef.h>

/* Fails the current check test (ck_abort_msg, with the checker's message)
 * unless the answer to METHOD PATH (as sent, query included) with this
 * status and body is as openapi.yaml documents it: the operation and the
 * status are documented and a JSON body matches the response's schema.
 * body is the answer's NUL-terminated body (NULL: empty). */
void td_check_openapi(const char *method, const char *path, long status,
                      const char *body);
/* The same for a body of size bytes (binary: NULs allowed) answered with
 * this Content-Type (NULL: as td_check_openapi, application/json when the
 * response documents it). A body of a non-JSON media type is not read:
 * only its Content-Type is checked. */
void td_check_openapi_typed(const char *method, const char *path, long status,
                            const char *body, size_t size, const char *content_type);

#endif
