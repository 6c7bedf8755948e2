/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Rust's std (1.78 on)
 * imports ProcessPrng from it for its random numbers (HashMap keys), and a
 * Windows binary without it exits with code 53 before printing anything.
 * This one export fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), Wine's own system random source. Built by
 * .ci/windows.sh with MinGW into the Wine prefix; test use only.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
