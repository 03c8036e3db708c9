package dev.rslora.backend.cuda;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Whether JCuda's native libraries exist for this platform and are on the class path, checked
 * without loading them. JCuda 12.6.0 publishes natives ({@code org.jcuda:jcuda-natives} and
 * {@code jcublas-natives}) for linux-x86_64 and windows-x86_64 only (checked on Maven Central);
 * rslora-cuda's POM adds them, runtime scope, on exactly those platforms, so on macOS or Linux
 * aarch64 it resolves without them and this check names the platform instead.
 */
final class JCudaNatives {
    /** The JCuda classifiers with published natives. */
    static final List<String> PUBLISHED = List.of("linux-x86_64", "windows-x86_64");

    private JCudaNatives() {
    }

    /** The platform as a user reads it: linux-x86_64, linux-aarch64, macOS-aarch64, macOS-x86_64, windows-x86_64, ... */
    static String platform(String osName, String osArch) {
        String os = osName.toLowerCase(Locale.ROOT);
        String arch = switch (osArch.toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64", "x64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> osArch.toLowerCase(Locale.ROOT);
        };
        String name = os.startsWith("windows") ? "windows" : os.startsWith("mac") || os.startsWith("darwin") ? "macOS"
                : os.startsWith("linux") ? "linux" : os.replace(' ', '_');
        return name + "-" + arch;
    }

    /** JCuda's version, from the jcuda jar's Maven metadata (no JCuda class is loaded), or "12.6.0" when absent. */
    static String jcudaVersion(ClassLoader loader) {
        try (InputStream in = loader.getResourceAsStream("META-INF/maven/org.jcuda/jcuda/pom.properties")) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                return p.getProperty("version", "12.6.0");
            }
        } catch (IOException e) {
            // fall through: the version only names files in messages
        }
        return "12.6.0";
    }

    /** The file name of JCuda's driver library for this platform, as JCuda's LibUtils names it. */
    static String driverLibraryFile(String platform, String version) {
        String base = "JCudaDriver-" + version + "-" + platform;
        return platform.startsWith("windows") ? base + ".dll" : "lib" + base + (platform.startsWith("macOS") ? ".dylib" : ".so");
    }

    /**
     * Null when JCuda's natives for this platform can be found (in a jar on the class path, or in
     * {@code java.library.path}), else why not: "no CUDA natives for macOS-aarch64 (...)".
     */
    static String missingReason(String osName, String osArch, ClassLoader loader) {
        String platform = platform(osName, osArch);
        String version = jcudaVersion(loader);
        if (!PUBLISHED.contains(platform)) {
            return "no CUDA natives for " + platform + " (JCuda " + version + " publishes natives for "
                    + String.join(" and ", PUBLISHED) + " only)";
        }
        String file = driverLibraryFile(platform, version);
        URL inJar = loader.getResource("lib/" + file);
        if (inJar != null || onLibraryPath(file)) {
            return null;
        }
        return "JCuda natives for " + platform + " are not on the class path (org.jcuda:jcuda-natives:" + version + ":" + platform
                + " holds lib/" + file + "; Maven adds it with rslora-cuda on this platform)";
    }

    private static boolean onLibraryPath(String file) {
        for (String dir : System.getProperty("java.library.path", "").split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isRegularFile(Path.of(dir, file))) {
                return true;
            }
        }
        return false;
    }
}
