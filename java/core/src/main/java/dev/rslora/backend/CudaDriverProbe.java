package dev.rslora.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;

/**
 * Looks for the NVIDIA driver library without initialising CUDA (safe on any machine), for the
 * message that says rslora-cuda is missing. Loading a library is a restricted method: it is only
 * tried when native access is enabled for this module ({@code --enable-native-access}), so a
 * CPU-only program never gets the JDK's restricted-method warning from a probe, and a denied
 * access is named as such, never reported as a missing driver.
 */
final class CudaDriverProbe {
    private CudaDriverProbe() {
    }

    /** A one-line description: whether libcuda.so.1 (or nvcuda.dll) can be loaded, or why it was not tried. */
    static String describe() {
        Module self = CudaDriverProbe.class.getModule();
        String flag = "--enable-native-access=" + (self.isNamed() ? self.getName() : "ALL-UNNAMED");
        if (!self.isNativeAccessEnabled()) {
            return "NVIDIA driver not probed: native access is not enabled for " + moduleName(self) + " (" + flag + ")";
        }
        String lib = System.getProperty("os.name", "").startsWith("Windows") ? "nvcuda.dll" : "libcuda.so.1";
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(lib, arena);
            return "NVIDIA driver found (" + lib + ")";
        } catch (IllegalCallerException e) {
            return "NVIDIA driver not probed: native access is denied to " + moduleName(self) + " (" + flag + ")";
        } catch (IllegalArgumentException e) {
            return "no NVIDIA driver: " + lib + " cannot be loaded";
        }
    }

    static String moduleName(Module m) {
        return m.isNamed() ? "module " + m.getName() : "the class path (unnamed module)";
    }
}
