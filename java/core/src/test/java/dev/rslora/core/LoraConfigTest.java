package dev.rslora.core;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraConfigTest {

    @Test
    void rsloraIsTheDefaultAndGammaIsAlphaOverSqrtR() {
        LoraConfig c = LoraConfig.rslora(16, 8);
        assertEquals(Scaling.RSLORA, c.scaling());
        assertEquals(2.0, c.gamma());
        assertEquals(0.5, c.withScaling(Scaling.LORA).gamma());
        // γ ratio rsLoRA / LoRA = √r: the conformance bug several engines shipped
        assertEquals(4.0, c.gamma() / c.withScaling(Scaling.LORA).gamma(), 1e-15);
        assertEquals(1.5 / Math.sqrt(3), new LoraConfig(3, 1.5, Scaling.RSLORA, 0, Init.DEFAULT, 0).gamma());
    }

    @Test
    void invalidValuesNameTheFieldAndValue() {
        assertMessage("rank=0", () -> new LoraConfig(0, 8, Scaling.RSLORA, 0, Init.DEFAULT, 0));
        assertMessage("alpha=0.0", () -> new LoraConfig(4, 0, Scaling.RSLORA, 0, Init.DEFAULT, 0));
        assertMessage("alpha=NaN", () -> new LoraConfig(4, Double.NaN, Scaling.RSLORA, 0, Init.DEFAULT, 0));
        assertMessage("alpha=Infinity", () -> new LoraConfig(4, Double.POSITIVE_INFINITY, Scaling.RSLORA, 0, Init.DEFAULT, 0));
        assertMessage("dropout=1.0", () -> new LoraConfig(4, 8, Scaling.RSLORA, 1.0, Init.DEFAULT, 0));
        assertMessage("dropout=-0.1", () -> new LoraConfig(4, 8, Scaling.RSLORA, -0.1, Init.DEFAULT, 0));
        assertMessage("scaling=null", () -> new LoraConfig(4, 8, null, 0, Init.DEFAULT, 0));
        assertMessage("init=null", () -> new LoraConfig(4, 8, Scaling.LORA, 0, null, 0));
    }

    /**
     * The masks and the backends use p and γ in fp32: a config whose p rounds to 1 there, or whose γ
     * overflows it, is refused when built, not at the first forward (p) or never (γ: cpu's output
     * became NaN where the reference's did not).
     */
    @Test
    void valuesThatBreakInFp32AreRefusedUpFront() {
        assertMessage("dropout=0.99999999999, which rounds to 1.0",
                () -> new LoraConfig(4, 8, Scaling.RSLORA, 0.99999999999, Init.DEFAULT, 0));
        assertEquals(0.9999999f, (float) new LoraConfig(4, 8, Scaling.RSLORA, 0.9999999, Init.DEFAULT, 0).dropout());
        assertMessage("alpha=1.0E39 with rank=1 gives", () -> new LoraConfig(1, 1e39, Scaling.LORA, 0, Init.DEFAULT, 0));
        assertMessage("alpha=1.0E39 with rank=4", () -> LoraConfig.rslora(4, 1e39));
        assertEquals(Float.MAX_VALUE / 2, LoraConfig.rslora(4, Float.MAX_VALUE).gamma());
        // a γ that is 0 in fp32 turned the adapter off on the cpu and cuda backends, silently
        assertMessage("alpha=1.0E-320 with rank=1 gives γ=1.0E-320, which is 0 in fp32",
                () -> new LoraConfig(1, 1e-320, Scaling.LORA, 0, Init.DEFAULT, 0));
        assertMessage("alpha=1.0E-46 with rank=64", () -> LoraConfig.rslora(64, 1e-46));
        // a subnormal γ kept some of its bits: the cpu backend's dA and dB came out 33 % below the reference's
        assertMessage("alpha=4.2E-45 with rank=4 gives γ=2.1E-45, which is subnormal in fp32",
                () -> LoraConfig.rslora(4, 4.2e-45));
        assertMessage("which is subnormal in fp32", () -> LoraConfig.rslora(1, Float.MIN_VALUE));
        assertEquals(Float.MIN_NORMAL, (float) LoraConfig.rslora(1, Float.MIN_NORMAL).gamma(), "the smallest normal γ is kept");
    }

    /** γ of a rank below 1 was Infinity (r = 0) or NaN (rsLoRA, r &lt; 0), silently. */
    @Test
    void gammaOfARankBelowOneIsRefused() {
        for (Scaling s : Scaling.values()) {
            assertMessage("r=0", () -> s.gamma(8, 0));
            assertMessage("r=-4", () -> s.gamma(8, -4));
        }
    }

    private static void assertMessage(String fragment, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }
}
