package dev.rslora.backend.cuda;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.BackendUnavailableException;
import dev.rslora.backend.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The probe's reasons on this machine; on a machine without the driver they must name it. */
class CudaBackendFactoryTest {

    @Test
    void classLoadsWithoutNativeCodeAndIsFoundByTheProvider() throws Exception {
        Class<?> c = Class.forName("dev.rslora.backend.cuda.CudaBackendFactory", true, getClass().getClassLoader());
        BackendFactory f = (BackendFactory) c.getConstructor().newInstance();
        assertEquals("cuda", f.name());
        BackendFactory.Availability viaProvider = Backends.probeAll().get("cuda");
        assertEquals(f.probe(), viaProvider, "Backends finds this factory through ServiceLoader");
        assertTrue(Backends.factories().stream().anyMatch(CudaBackendFactory.class::isInstance), "registered in META-INF/services");
    }

    @Test
    void withoutADriverTheReasonNamesTheDriverLibrary() {
        String missing = DriverLibrary.missingReason();
        BackendFactory.Availability a = new CudaBackendFactory().probe();
        System.out.println("cuda probe here: " + a);
        if (missing == null) {
            // a machine with the driver: available, or a precise later reason
            assertTrue(a.available() || a.detail().startsWith("kernels not built")
                    || a.detail().startsWith("JCuda native library") || a.detail().startsWith("no CUDA device")
                    || a.detail().startsWith("CUDA device") || a.detail().startsWith("CUDA driver error"), a.detail());
            return;
        }
        assertFalse(a.available());
        assertTrue(a.detail().startsWith("no NVIDIA driver: " + DriverLibrary.libraryName() + " cannot be loaded"), a.detail());
        if (!KernelImage.load().built()) {
            assertTrue(a.detail().contains("kernels not built"), a.detail());
        }
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> new CudaBackendFactory().create());
        assertTrue(e.getMessage().contains("no NVIDIA driver"), e.getMessage());
        BackendUnavailableException viaGet = assertThrows(BackendUnavailableException.class, () -> Backends.get("cuda"));
        assertTrue(viaGet.getMessage().contains(DriverLibrary.libraryName()), viaGet.getMessage());
    }

    /** Sets a system property for the duration of {@code body}, restoring the previous value. */
    private static void withProperty(String key, String value, Runnable body) {
        String before = System.getProperty(key);
        System.setProperty(key, value);
        try {
            body.run();
        } finally {
            if (before == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, before);
            }
        }
    }

    @Test
    void aDeviceOrdinalThatIsNotANonNegativeIntegerIsNamedNotReadAsDevice0() {
        for (String bad : new String[] {"abc", "-1", "1.5", "0x1", "99999999999"}) {
            withProperty(CudaBackendFactory.DEVICE_PROPERTY, bad, () -> {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CudaBackendFactory::deviceOrdinal, bad);
                assertEquals("-Drslora.cuda.device=" + bad + ": expected a CUDA device ordinal (an integer >= 0)", e.getMessage());
                BackendFactory.Availability a = new CudaBackendFactory().probe();
                assertFalse(a.available());
                assertEquals(e.getMessage(), a.detail());
                BackendUnavailableException c = assertThrows(BackendUnavailableException.class, () -> new CudaBackendFactory().create());
                assertTrue(c.getMessage().contains("-Drslora.cuda.device=" + bad), c.getMessage());
            });
        }
        withProperty(CudaBackendFactory.DEVICE_PROPERTY, " 1 ", () -> assertEquals(1, CudaBackendFactory.deviceOrdinal()));
        withProperty(CudaBackendFactory.DEVICE_PROPERTY, "", () -> assertEquals(0, CudaBackendFactory.deviceOrdinal()));
    }

    @Test
    void aWorkspaceCapThatIsNotAPositiveMibCountIsNamed() {
        assertEquals(256L << 20, CudaBackend.workspaceCapFromProperty(), "default 256 MiB");
        for (String bad : new String[] {"abc", "0", "-5", "8796093022208", "1.5"}) {
            withProperty(CudaBackend.WORKSPACE_PROPERTY, bad, () -> {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CudaBackend::workspaceCapFromProperty, bad);
                assertEquals("-Drslora.cuda.workspaceMiB=" + bad + ": expected MiB, an integer >= 1", e.getMessage());
            });
        }
        withProperty(CudaBackend.WORKSPACE_PROPERTY, "64", () -> assertEquals(64L << 20, CudaBackend.workspaceCapFromProperty()));
        withProperty(CudaBackend.WORKSPACE_PROPERTY, "8796093022207", () -> assertEquals(8796093022207L << 20, CudaBackend.workspaceCapFromProperty()));
    }
}
