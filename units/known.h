/* Directive names known to systemd and Podman Quadlet (for error messages). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

bool systemd_knows_directive(const char *section, const char *key);
bool quadlet_knows_container_key(const char *key);
