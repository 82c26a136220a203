/* The front door: libmicrohttpd's callbacks. Each request goes headers ->
 * router -> the checks every route shares (CORS preflight, unknown path,
 * model name, method, bearer token, declared body size) -> its handler's
 * begin; its body is fed to it piece by piece; once the body is whole the
 * handler's end runs; the answer goes out when it is built. */
#ifndef HTTP_DISPATCH_H
#define HTTP_DISPATCH_H

#include <microhttpd.h>

/* MHD_AccessHandlerCallback; cls is the service_t. */
enum MHD_Result dispatch_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED's callback; cls is the service_t. */
void dispatch_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe);

#endif
