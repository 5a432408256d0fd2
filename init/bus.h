/* The D-Bus API (org.vigil1): the private socket (peer to peer) and the system bus. */
#pragma once

#include "manager.h"

/* Listens on path (mode 0600, replacing a stale socket) and serves every connection from
 * the manager's event loop; also connects to the system bus named in vigil.conf whenever it
 * is there (and again after it restarts). */
int bus_server_new(manager *m, const char *path, bus_server **ret);
bus_server *bus_server_free(bus_server *b);

/* Emits PropertiesChanged for the service's object and ServiceStateChanged on every
 * connection. */
void bus_service_changed(bus_server *b, service *s);
/* Emits ServiceCrashed: the run that just ended failed. */
void bus_service_crashed(bus_server *b, service *s);
/* Emits ImageUpdate(kind, image, version, detail) on every connection: kind is what happened
 * ("installed", "promoted", "rolled-back", "rejected"); a NULL string is sent as "". */
void bus_image_update(bus_server *b, const char *kind, const char *image, const char *version,
                      const char *detail);
/* Ends every FollowLogs() stream of the service; call before its log stream is freed. */
void bus_service_removed(bus_server *b, service *s);
/* Whether vigil owns org.vigil1 on the system bus now. */
bool bus_server_system_named(bus_server *b);
