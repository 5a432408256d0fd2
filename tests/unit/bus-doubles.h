/* Test doubles of the manager for init/bus.c (see bus-doubles.c). */
#pragma once

#include "manager.h"

extern manager fake_manager;
extern char bus_doubles_work[64]; /* the log dir; WORK/broken makes ReloadUnits fail */
extern int shutdowns;             /* manager_begin_shutdown() calls */

/* Fills m with the fake services and the access rules of TEST_CONF; exits 89 on failure. */
void bus_doubles_setup(manager *m);
void bus_doubles_done(void);
