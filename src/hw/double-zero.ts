/**
 * The first value of a number field that later holds fractions or numbers past the small
 * integers (above 2^31, or an address): zero as a double. V8 gives a field the representation
 * of the first value stored in it; a small-integer field that then receives a double moves
 * every object of its class to a new hidden class, and each function compiled against the old
 * one is thrown away at its next use and compiled again. A simulation makes its objects anew
 * each run, so this happened once a run early on, in each worker thread: with it gone the JIT
 * compiles less, which is time taken from the runs when every core is running one.
 *
 * -0 is zero stored as a double (it is no small integer); it equals 0 in every comparison,
 * sum and bit operation the fields take part in (-0 + x is x, -0 ^ x is x), and prints as "0"
 * in JSON and String().
 */
export const DOUBLE_ZERO = -0;
