package dev.rslora.peft;

import java.io.IOException;

/**
 * A PEFT adapter folder, adapter config or checkpoint index is malformed, inconsistent with its
 * base, or uses a variant this library does not implement. Checked (an {@link IOException}) like
 * {@link dev.rslora.io.SafetensorsException}: bad input files are the caller's to handle. The
 * message names the file, the field or module, and the values that disagree.
 */
public final class PeftFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * An exception whose message names the file, the field and what is wrong.
     *
     * @param message the file, the field or module, and the values that disagree
     */

    public PeftFormatException(String message) {
        super(message);
    }
}
