package dev.rslora.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;

/** Looks for the NVIDIA driver library without initialising CUDA (safe on any machine). */
final class CudaDriverProbe {
    private CudaDriverProbe() {
    }

    /** A one-line description: whether libcuda.so.1 (or nvcuda.dll) can be loaded. */
    static String describe() {
        String lib = System.getProperty("os.name", "").startsWith("Windows") ? "nvcuda.dll" : "libcuda.so.1";
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(lib, arena);
            return "NVIDIA driver found (" + lib + ")";
        } catch (IllegalArgumentException | IllegalCallerException e) {
            return "no NVIDIA driver: " + lib + " cannot be loaded";
        }
    }
}
