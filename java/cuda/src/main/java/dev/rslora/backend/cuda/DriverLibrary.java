package dev.rslora.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;

/**
 * Whether the NVIDIA driver library can be loaded, checked through {@code java.lang.foreign}
 * without initialising CUDA or loading JCuda's natives (JCuda's driver library links against
 * libcuda.so.1 and fails hard without it). Same check as dev.rslora.backend.CudaDriverProbe.
 */
final class DriverLibrary {
    private DriverLibrary() {
    }

    static String libraryName() {
        return System.getProperty("os.name", "").startsWith("Windows") ? "nvcuda.dll" : "libcuda.so.1";
    }

    /** Null when the library loads, else the reason it does not (a missing driver, or a denied native access). */
    static String missingReason() {
        String lib = libraryName();
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(lib, arena);
            return null;
        } catch (IllegalCallerException e) {
            return NativeAccess.denied(DriverLibrary.class.getModule(), "loading " + lib + " through java.lang.foreign");
        } catch (IllegalArgumentException e) {
            return "no NVIDIA driver: " + lib + " cannot be loaded";
        }
    }
}
