package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.net.URL;
import java.net.URLClassLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** JCuda natives by platform: named where JCuda publishes none, found here (linux-x86_64, resolved by the POM profile). */
class JCudaNativesTest {
    private final ClassLoader here = JCudaNativesTest.class.getClassLoader();

    @Test
    void platformsAreNamedAsUsersReadThem() {
        assertEquals("linux-x86_64", JCudaNatives.platform("Linux", "amd64"));
        assertEquals("linux-aarch64", JCudaNatives.platform("Linux", "aarch64"));
        assertEquals("macOS-aarch64", JCudaNatives.platform("Mac OS X", "aarch64"));
        assertEquals("macOS-x86_64", JCudaNatives.platform("Mac OS X", "x86_64"));
        assertEquals("windows-x86_64", JCudaNatives.platform("Windows 11", "amd64"));
    }

    @Test
    void platformsWithoutPublishedNativesSaySo() {
        assertEquals("12.6.0", JCudaNatives.jcudaVersion(here), "the version comes from the jcuda jar's Maven metadata");
        for (String[] p : new String[][] {{"Mac OS X", "aarch64", "macOS-aarch64"}, {"Mac OS X", "x86_64", "macOS-x86_64"},
                {"Linux", "aarch64", "linux-aarch64"}}) {
            String why = JCudaNatives.missingReason(p[0], p[1], here);
            assertEquals("no CUDA natives for " + p[2] + " (JCuda 12.6.0 publishes natives for linux-x86_64 and windows-x86_64 only)", why);
        }
    }

    @Test
    void theNativesOfThisPlatformAreFoundAndAMissingJarIsNamed() throws Exception {
        String os = System.getProperty("os.name");
        String arch = System.getProperty("os.arch");
        if (!JCudaNatives.PUBLISHED.contains(JCudaNatives.platform(os, arch))) {
            System.out.println("JCudaNativesTest: " + JCudaNatives.platform(os, arch) + " has no published natives; nothing to find");
            return;
        }
        assertNull(JCudaNatives.missingReason(os, arch, here), "rslora-cuda's OS profile put jcuda-natives on the test class path");
        try (URLClassLoader bare = new URLClassLoader(new URL[0], null)) {
            String why = JCudaNatives.missingReason(os, arch, bare);
            assertTrue(why.startsWith("JCuda natives for " + JCudaNatives.platform(os, arch) + " are not on the class path"), why);
            assertTrue(why.contains("org.jcuda:jcuda-natives:12.6.0:" + JCudaNatives.platform(os, arch)), why);
        }
    }
}
