/* Test fixture, never shipped: Wine 8 has no bcryptprimitives.dll, from which Rust's std
 * imports ProcessPrng. This DLL provides that one export on top of RtlGenRandom
 * (advapi32!SystemFunction036) so the agent can start under Wine in CI. */
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
