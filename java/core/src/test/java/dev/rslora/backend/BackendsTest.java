package dev.rslora.backend;

import dev.rslora.backend.cpu.CpuBackendFactory;
import dev.rslora.backend.reference.ReferenceBackendFactory;
import org.junit.jupiter.api.Test;

import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The provider in rslora-core alone: reference and cpu come from META-INF/services, cuda is absent and says so. */
class BackendsTest {
    private static final String NO_CUDA = "the CUDA backend (dev.rslora:rslora-cuda) is not on the class path";

    @Test
    void factoriesComeFromServiceLoaderInPreferenceOrder() {
        List<BackendFactory> fs = Backends.factories();
        assertEquals(List.of("cuda", "cpu", "reference"), fs.stream().map(BackendFactory::name).toList());
        assertInstanceOf(CpuBackendFactory.class, fs.get(1));
        assertInstanceOf(ReferenceBackendFactory.class, fs.get(2));
        assertEquals("cpu", Backends.get("auto").name(), "the Vector API module is enabled in the tests");
    }

    @Test
    void withoutRsloraCudaTheCudaEntryNamesTheMissingArtifactAndTheDriver() {
        BackendFactory.Availability a = Backends.probeAll().get("cuda");
        assertFalse(a.available());
        assertEquals(NO_CUDA + "; " + CudaDriverProbe.describe(), a.detail());
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> Backends.get("cuda"));
        assertEquals("backend 'cuda' is unavailable: " + a.detail(), e.getMessage());
        BackendUnavailableException create = assertThrows(BackendUnavailableException.class, () -> Backends.factories().get(0).create());
        assertEquals("cuda backend is unavailable: " + a.detail(), create.getMessage());
    }

    @Test
    void anUnknownNameListsTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.get("nope"));
        assertEquals("unknown backend 'nope': expected reference, cpu, cuda or auto", e.getMessage());
    }

    @Test
    void aBadSystemPropertyIsNamedAsTheProperty() {
        String before = System.getProperty(Backends.PROPERTY);
        try {
            System.setProperty(Backends.PROPERTY, "gpu");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Backends::fromSystemProperty);
            assertEquals("-Drslora.backend=gpu: unknown backend 'gpu': expected reference, cpu, cuda or auto", e.getMessage());
            System.setProperty(Backends.PROPERTY, "reference");
            assertEquals("reference", Backends.fromSystemProperty().name());
        } finally {
            if (before == null) {
                System.clearProperty(Backends.PROPERTY);
            } else {
                System.setProperty(Backends.PROPERTY, before);
            }
        }
    }

    /**
     * A caller that closes what it was given (the cpu backend is AutoCloseable) closes the JVM's shared instance: its
     * layers are refused from then on, but the next get() creates a new instance instead of handing out the closed one
     * ("this cpu backend is closed" for every later caller in the JVM, before).
     */
    @Test
    void aClosedSharedInstanceIsReplacedByTheNextGet() throws Exception {
        Backend first = Backends.get("cpu");
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 3);
            Tensor x = Tensor.allocate(arena, DType.F32, 2, 3);
            try (LoraLinear old = LoraLinear.create(w, null, LoraConfig.rslora(2, 2), first)) {
                ((AutoCloseable) first).close();
                assertTrue(first.isClosed());
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> old.forward(arena, x));
                assertTrue(e.getMessage().contains("closed"), e.getMessage());
            }
            Backend second = Backends.get("cpu");
            assertNotSame(first, second);
            assertFalse(second.isClosed());
            assertEquals("cpu", Backends.get("auto").name());
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(2, 2), second)) {
                layer.forward(arena, x);
            }
            assertFalse(Backends.get("reference").isClosed(), "the reference holds nothing to close");
        }
    }
}
