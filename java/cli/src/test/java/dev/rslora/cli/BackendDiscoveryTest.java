package dev.rslora.cli;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.Backends;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** With rslora-cuda on the class path (as in the CLI), the provider finds its factory; the CLI names no CUDA class. */
class BackendDiscoveryTest {

    @Test
    void theCudaFactoryIsFoundThroughServiceLoader() {
        List<BackendFactory> fs = Backends.factories();
        assertEquals(List.of("cuda", "cpu", "reference"), fs.stream().map(BackendFactory::name).toList());
        assertEquals("dev.rslora.backend.cuda.CudaBackendFactory", fs.get(0).getClass().getName());
        String detail = Backends.probeAll().get("cuda").detail();
        assertFalse(detail.contains("not on the class path"), detail);
    }
}
