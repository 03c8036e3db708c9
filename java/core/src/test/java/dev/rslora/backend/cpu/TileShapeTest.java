package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The register tile's shape: chosen from the JIT's vector width or the rslora.cpu.vectorBits
 * property, and the shape each test JVM really runs. The build runs the cpu tests once per shape
 * (java/core/pom.xml: 512-bit by default on this machine, -XX:UseAVX=2 and -XX:MaxVectorSize=32
 * for 256 bits with 16 and 32 registers, -XX:MaxVectorSize=16 and -XX:UseAVX=1 for 128 bits,
 * -Drslora.cpu.vectorBits=0 for scalar code), each telling
 * this test which shape it asked for in rslora.test.expectVectorBits.
 */
class TileShapeTest {

    @Test
    void thisJvmRunsTheShapeItsExecutionAskedFor() {
        String expected = System.getProperty("rslora.test.expectVectorBits");
        System.out.println("cpu backend tile: " + CpuBackend.tileShape() + " (JIT preferred: "
                + MicroKernel.PREFERRED_BITS + " bits)");
        if (expected == null) {
            assertEquals(MicroKernel.PREFERRED_BITS, MicroKernel.BITS, "without a request the JIT's width is used");
            return;
        }
        // a machine whose vectors are narrower than the request runs its own width
        int want = Math.min(Integer.parseInt(expected), MicroKernel.PREFERRED_BITS);
        assertEquals(want, MicroKernel.BITS, "tile width: " + CpuBackend.tileShape());
    }

    @Test
    void shapesFitTheirRegisterFiles() {
        // accumulators, panel vectors, the broadcast, and without FMA the product between multiply and add
        int registers = MicroKernel.MR * MicroKernel.NV + MicroKernel.NV + 1 + (dev.rslora.simd.Fma.FUSED ? 0 : 1);
        // every width is sized by the JIT's register file: 16 on x86 without AVX-512 (the cpu-tile-256,
        // cpu-tile-128-avx and cpu-no-fma executions), 32 with AVX-512 or on aarch64 (cpu-tile-256-evex, cpu-tile-128)
        int available = MicroKernel.REGISTERS;
        assertTrue(registers <= available, registers + " vector registers needed by " + CpuBackend.tileShape());
        assertEquals(MicroKernel.NV * MicroKernel.L, MicroKernel.NR);
        assertEquals(0, Split.MC % MicroKernel.MR, "chunks are whole tiles");
        assertEquals(0, Split.MC_STREAMED % MicroKernel.MR, "chunks are whole tiles");
        assertEquals(0, Split.NC % MicroKernel.NR, "gradient column groups are whole panels");
    }

    @Test
    void eachWidthIsSizedByTheRegisterFile() {
        // 32 registers with FMA: the bigger tile; 16 (x86 without AVX-512) or no FMA: the one that fits
        assertEquals("256-bit vectors, 8×16 tile", MicroKernel.shapeName(256, true, 32));
        assertEquals("256-bit vectors, 6×16 tile", MicroKernel.shapeName(256, true, 16));
        assertEquals("256-bit vectors, 6×16 tile", MicroKernel.shapeName(256, false, 32));
        assertEquals("128-bit vectors, 8×12 tile", MicroKernel.shapeName(128, true, 32));
        assertEquals("128-bit vectors, 6×8 tile", MicroKernel.shapeName(128, true, 16));
        assertEquals("128-bit vectors, 5×8 tile", MicroKernel.shapeName(128, false, 16));
        assertEquals("512-bit vectors, 8×32 tile", MicroKernel.shapeName(512, true, 32));
        assertEquals("scalar, 4×4 tile", MicroKernel.shapeName(0, true, 16));
        // the method the build's code checks (TileCodeTest) is the one this JVM's shape names
        String method = MicroKernel.tileMethod();
        if (MicroKernel.BITS == 256) {
            assertEquals(MicroKernel.MR == 8 ? "mma256x8" : "mma256", method);
        }
    }

    @Test
    void theWidthIsTheLargestShapeNotAboveTheRequestOrThePreferredWidth() {
        assertEquals(512, MicroKernel.chooseBits(null, 512));
        assertEquals(256, MicroKernel.chooseBits("256", 512));
        assertEquals(128, MicroKernel.chooseBits(" 128 ", 512));
        assertEquals(0, MicroKernel.chooseBits("0", 512));
        assertEquals(256, MicroKernel.chooseBits("512", 256), "a request above the JIT's width is lowered");
        assertEquals(0, MicroKernel.chooseBits("128", 0));
        assertEquals(512, MicroKernel.shapeBits(2048));
        assertEquals(256, MicroKernel.shapeBits(384));
        assertEquals(0, MicroKernel.shapeBits(64));
        assertNull(MicroKernel.configError(null));
        assertNull(MicroKernel.configError("512"));
        String e = MicroKernel.configError("avx2");
        assertNotNull(e);
        assertTrue(e.contains("rslora.cpu.vectorBits=avx2") && e.contains("512, 256, 128 or 0"), e);
        assertNotNull(MicroKernel.configError("64"));
    }

    @Test
    void aBadRequestIsRefusedWithItsValue() {
        if (MicroKernel.CONFIG_ERROR == null) {
            assertThrows(IllegalArgumentException.class, () -> new CpuBackend(0));
            return;
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CpuBackend(1));
        assertTrue(e.getMessage().contains(MicroKernel.PROPERTY), e.getMessage());
    }
}
