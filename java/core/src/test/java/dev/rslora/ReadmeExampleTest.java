package dev.rslora;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's usage example, compiled and run; and a check that the README shows exactly this code. */
class ReadmeExampleTest {

    @Test
    void readmeExampleRuns() {
        // README:begin
        try (Arena arena = Arena.ofShared()) {                       // owns X, W, Y, dY, dX
            int n = 8, dIn = 64, dOut = 32;
            Tensor w = Tensor.allocate(arena, DType.F32, dOut, dIn);  // frozen W [d_out, d_in]
            Tensor x = Tensor.allocate(arena, DType.F32, n, dIn);     // X [N, d_in]
            w.fill(0.01f);
            x.fill(1f);
            Backend backend = Backends.get("auto");                   // cuda > cpu > reference
            LoraConfig cfg = LoraConfig.rslora(16, 8).withDropout(0.1);  // γ = 8/√16 = 2
            try (LoraLinear layer = LoraLinear.create(w, null, cfg, backend)) {
                Tensor y = layer.forward(arena, x);                    // Y = X·Wᵀ + γ·(D(X)·Aᵀ)·Bᵀ
                Tensor dy = Tensor.allocate(arena, DType.F32, n, dOut);
                dy.fill(1f);
                Tensor dx = Tensor.allocate(arena, DType.F32, n, dIn);
                layer.backward(dy, dx);                                // dX, and dA/dB in layer.gradA()/gradB()
                // an optimizer now updates layer.loraA() / layer.loraB() from the gradients
        // README:end
                assertEquals(0.64f, y.get(0, 0), 1e-5f, "B = 0 at init: Y is the base output");
                assertEquals(0.32f, dx.get(0, 0), 1e-5f, "B = 0 at init: dX = dY·W");
                assertNotEquals(0f, layer.gradB().get(0, 0), "dB = γ·dYᵀ·U is non-zero at init");
                assertEquals(2.0, layer.gamma());
            }
        }
    }

    @Test
    void readmeShowsThisExample() throws IOException {
        Path readme = Path.of("../..", "README.md");
        Path self = Path.of("src", "test", "java", "dev", "rslora", "ReadmeExampleTest.java");
        List<String> code = Files.readAllLines(self);
        int begin = code.indexOf("        // README:begin");
        int end = code.indexOf("        // README:end");
        String snippet = String.join("\n", code.subList(begin + 1, end).stream().map(l -> l.length() >= 8 ? l.substring(8) : l.strip()).toList());
        String text = Files.readString(readme);
        assertTrue(text.contains(snippet), "README.md must contain the example exactly as in " + self + ":\n" + snippet);
    }
}
