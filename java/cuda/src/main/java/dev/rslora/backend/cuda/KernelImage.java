package dev.rslora.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The kernel fatbin built by {@code native-build/build-kernels.sh} and shipped in the jar as
 * {@value #FATBIN}, with {@value #PROPERTIES} saying whether it was built (and why not). Reading
 * these touches no native code.
 */
final class KernelImage {
    static final String FATBIN = "/dev/rslora/cuda/rslora_kernels.fatbin";
    static final String PROPERTIES = "/dev/rslora/cuda/kernels.properties";
    /** The sm_90a-only image (the v3 kernels), next to the main one when the build made it. */
    static final String FATBIN_SM90A = "/dev/rslora/cuda/rslora_kernels_sm90a.fatbin";
    /** The first four bytes of a fatbin container, little-endian 0xBA55ED50. */
    static final int FATBIN_MAGIC = 0xBA55ED50;

    /** What the build left: {@code image} is null when not built, with {@code reason} saying why. */
    record Status(byte[] image, String reason, String detail) {
        boolean built() {
            return image != null;
        }
    }

    private static volatile Status cached;

    private KernelImage() {
    }

    /** The image of this class loader's jar, read once (never throws). */
    static Status load() {
        Status s = cached;
        if (s == null) {
            s = read();
            cached = s;
        }
        return s;
    }

    /** Reads the image from the classpath (never throws). */
    static Status read() {
        Properties props = new Properties();
        try (InputStream in = KernelImage.class.getResourceAsStream(PROPERTIES)) {
            if (in == null) {
                return new Status(null, "kernels not built: " + PROPERTIES.substring(1) + " is missing from this build", "");
            }
            props.load(in);
        } catch (IOException e) {
            return new Status(null, "kernels not built: cannot read " + PROPERTIES + ": " + e, "");
        }
        String detail = "nvcc " + props.getProperty("nvcc", "?") + ", SASS " + props.getProperty("archs", "?")
                + " + PTX " + props.getProperty("ptx", "?");
        if (!"true".equals(props.getProperty("built"))) {
            return new Status(null, "kernels not built: " + props.getProperty("reason", "no reason recorded"), detail);
        }
        byte[] image;
        try (InputStream in = KernelImage.class.getResourceAsStream(FATBIN)) {
            if (in == null) {
                return new Status(null, "kernels not built: " + FATBIN.substring(1) + " is missing although "
                        + PROPERTIES.substring(1) + " says built=true", detail);
            }
            image = in.readAllBytes();
        } catch (IOException e) {
            return new Status(null, "kernels not built: cannot read " + FATBIN + ": " + e, detail);
        }
        if (image.length < 16 || magic(image) != FATBIN_MAGIC) {
            return new Status(null, "kernels not built: " + FATBIN + " is not a fatbin (" + image.length
                    + " bytes, magic 0x" + Integer.toHexString(image.length >= 4 ? magic(image) : 0) + ")", detail);
        }
        return new Status(image, "", detail);
    }

    /** The sm_90a image's bytes, or null when this jar has none (or it is not a fatbin). Never throws. */
    static byte[] sm90a() {
        try (InputStream in = KernelImage.class.getResourceAsStream(FATBIN_SM90A)) {
            if (in == null) {
                return null;
            }
            byte[] image = in.readAllBytes();
            return image.length >= 16 && magic(image) == FATBIN_MAGIC ? image : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** The little-endian int at the start of {@code b}. */
    static int magic(byte[] b) {
        return (b[0] & 0xFF) | (b[1] & 0xFF) << 8 | (b[2] & 0xFF) << 16 | (b[3] & 0xFF) << 24;
    }
}
