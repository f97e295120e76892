namespace Pip.Training;

/// <summary>Decides whether a validation-loss curve has flattened.</summary>
public static class EarlyStopping
{
    /// <summary>
    /// True when the last <paramref name="patience"/> evaluations brought no improvement of at least
    /// <paramref name="minDelta"/>: <c>min(before) − min(last patience) &lt; minDelta</c>. Needs more than
    /// <paramref name="patience"/> losses; with fewer it returns false.
    /// </summary>
    /// <param name="validationLosses">The validation losses in evaluation order.</param>
    /// <param name="patience">How many recent evaluations to judge (at least 1).</param>
    /// <param name="minDelta">The improvement that counts as progress (0 or more).</param>
    /// <returns>Whether training should stop.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="patience"/> is below 1 or <paramref name="minDelta"/> is negative.</exception>
    public static bool HasFlattened(IReadOnlyList<double> validationLosses, int patience, double minDelta)
    {
        ArgumentNullException.ThrowIfNull(validationLosses);
        ArgumentOutOfRangeException.ThrowIfLessThan(patience, 1);
        if (!(minDelta >= 0)) throw new ArgumentOutOfRangeException(nameof(minDelta), minDelta, "The minimum improvement must be 0 or more.");
        int n = validationLosses.Count;
        if (n <= patience) return false;
        double bestBefore = double.PositiveInfinity;
        for (int i = 0; i < n - patience; i++) bestBefore = Math.Min(bestBefore, validationLosses[i]);
        double bestRecent = double.PositiveInfinity;
        for (int i = n - patience; i < n; i++) bestRecent = Math.Min(bestRecent, validationLosses[i]);
        return bestBefore - bestRecent < minDelta;
    }
}
