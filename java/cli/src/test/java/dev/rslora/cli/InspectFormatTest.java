package dev.rslora.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** inspect's γ column: plain digits in [1e-4, 1e7), scientific notation outside, 6 significant digits. */
class InspectFormatTest {
    @Test
    void gammaIsPlainInsideTheRangeAndScientificOutsideIt() {
        assertEquals("4", Inspect.sixDigits(4));
        assertEquals("5.65685", Inspect.sixDigits(Math.sqrt(32)));
        assertEquals("0.125", Inspect.sixDigits(0.125));
        assertEquals("0.0002", Inspect.sixDigits(2e-4));
        assertEquals("0", Inspect.sixDigits(-0.0));
        // BigDecimal.toString() printed these as 0.00005 and 0.000002, against the javadoc (second review)
        assertEquals("5E-5", Inspect.sixDigits(5e-5));
        assertEquals("2E-6", Inspect.sixDigits(2e-6));
        assertEquals("-5E-5", Inspect.sixDigits(-5e-5));
        assertEquals("5E-7", Inspect.sixDigits(5e-7));
        assertEquals("5E-41", Inspect.sixDigits(5e-41));
        assertEquals("1E+7", Inspect.sixDigits(1e7));
        assertEquals("1.25E+12", Inspect.sixDigits(1.25e12));
        assertEquals("1.23457E+8", Inspect.sixDigits(123456789));
    }
}
