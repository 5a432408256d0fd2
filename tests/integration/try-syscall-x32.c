/* try-syscall: the system call numbers of the x32 ABI (the syscall number with __X32_SYSCALL_BIT).
 */
/* <asm/unistd.h> defines it before including this ABI's numbers */
#define __X32_SYSCALL_BIT 0x40000000
#include <asm/unistd_x32.h>

#include "try-syscall.h"

/* Calls this ABI does not have. */
#ifndef __NR_kexec_file_load
#define __NR_kexec_file_load -1
#endif
#ifndef __NR_nfsservctl
#define __NR_nfsservctl -1
#endif
#ifndef __NR_uselib
#define __NR_uselib -1
#endif
#ifndef __NR_socketcall
#define __NR_socketcall -1
#endif

#define TRY_NR(probe, call, ...) [P_##probe] = __NR_##call,
const long try_nr_x32[N_PROBES] = { TRY_PROBES(TRY_NR) };
