package dev.rslora.simd;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;

class VectorRegistersTest {
    @Test
    void x86CountsEvexRegistersOnlyWithAvx512() {
        assertEquals(32, VectorRegisters.count("amd64", 3));
        assertEquals(16, VectorRegisters.count("amd64", 2));
        assertEquals(16, VectorRegisters.count("x86_64", 1));
        assertEquals(16, VectorRegisters.count("amd64", 0));
        assertEquals(16, VectorRegisters.count("amd64", null), "unknown on x86: the smaller file");
        assertEquals(32, VectorRegisters.count("aarch64", null));
    }

    @Test
    void thisJvmsCountFollowsItsUseAvxFlag() {
        String arch = System.getProperty("os.arch", "");
        if (!arch.equals("amd64") && !arch.equals("x86_64")) {
            assertEquals(32, VectorRegisters.COUNT);
            return;
        }
        var bean = ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
        int useAvx = Integer.parseInt(bean.getVMOption("UseAVX").getValue());
        assertEquals(useAvx >= 3 ? 32 : 16, VectorRegisters.COUNT, "UseAVX=" + useAvx);
    }
}
