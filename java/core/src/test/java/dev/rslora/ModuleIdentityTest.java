package dev.rslora;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.Backends;
import org.junit.jupiter.api.Test;

import java.lang.module.ModuleDescriptor;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * rslora-core is a named module (module-info.java), and these tests run on the module path (Surefire
 * patches them into it): what the module exports, requires, uses and provides is what consumers on
 * the module path get.
 */
class ModuleIdentityTest {

    @Test
    void coreIsTheNamedModuleDevRsloraCoreAndTheTestsRunInIt() {
        Module m = Backends.class.getModule();
        assertTrue(m.isNamed(), "rslora-core must be loaded as a named module (tests on the module path), got " + m);
        assertEquals("dev.rslora.core", m.getName());
        assertEquals(m, ModuleIdentityTest.class.getModule(), "the tests are patched into the module");
    }

    @Test
    void exportsOnlyTheApiPackagesAndProvidesItsBackends() {
        ModuleDescriptor d = Backends.class.getModule().getDescriptor();
        Set<String> exports = d.exports().stream().map(ModuleDescriptor.Exports::source).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(Set.of("dev.rslora.tensor", "dev.rslora.dropout", "dev.rslora.optim", "dev.rslora.backend",
                "dev.rslora.core", "dev.rslora.io", "dev.rslora.peft", "dev.rslora.train", "dev.rslora.model")), exports);
        assertEquals(Set.of(BackendFactory.class.getName()), d.uses());
        Set<String> providers = d.provides().stream().flatMap(p -> p.providers().stream()).collect(Collectors.toSet());
        assertEquals(Set.of("dev.rslora.backend.reference.ReferenceBackendFactory", "dev.rslora.backend.cpu.CpuBackendFactory"), providers);
        Set<String> requires = d.requires().stream().filter(r -> !r.name().equals("java.base"))
                .map(r -> r.name() + (r.modifiers().contains(ModuleDescriptor.Requires.Modifier.STATIC) ? " (static)" : ""))
                .collect(Collectors.toSet());
        // the management modules only for dev.rslora.simd.Fma's reading of HotSpot's UseFMA, where they are resolved
        assertEquals(Set.of("jdk.incubator.vector (static)", "java.management (static)", "jdk.management (static)",
                "com.fasterxml.jackson.databind"), requires);
        Set<String> found = Backends.factories().stream().map(BackendFactory::name).collect(Collectors.toSet());
        assertTrue(found.containsAll(Set.of("reference", "cpu")), "ServiceLoader finds the provided backends through the module: " + found);
    }
}
