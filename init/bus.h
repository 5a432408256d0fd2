/* The D-Bus API (org.vigil1) on the private socket: peer-to-peer sd-bus connections. */
#pragma once

#include "manager.h"

/* Listens on path (mode 0600, replacing a stale socket) and serves every
 * connection from the manager's event loop. */
int bus_server_new(manager *m, const char *path, bus_server **ret);
bus_server *bus_server_free(bus_server *b);

/* Emits PropertiesChanged for the service's object on every connection. */
void bus_service_changed(bus_server *b, service *s);
/* Ends every FollowLogs() stream of the service; call before its log stream is freed. */
void bus_service_removed(bus_server *b, service *s);
