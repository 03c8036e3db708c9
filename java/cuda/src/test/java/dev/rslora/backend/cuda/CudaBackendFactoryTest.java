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
}
