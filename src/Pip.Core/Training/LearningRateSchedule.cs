namespace Pip.Training;

/// <summary>
/// A learning-rate schedule: linear warm-up to the peak, then cosine decay to <c>peak × MinRatio</c>, as a pure
/// function of the (zero-based) optimizer step.
/// </summary>
/// <remarks>
/// Step <c>s</c> is the <c>s</c>-th optimizer update (0 … <see cref="TotalSteps"/> − 1). During warm-up the rate is
/// <c>peak × (s + 1) / WarmupSteps</c>, so the last warm-up step (<c>WarmupSteps − 1</c>) runs at the peak; with no
/// warm-up, step 0 runs at the peak. The cosine then falls to the minimum, reached exactly at the last step and kept
/// for any step beyond it.
/// </remarks>
public sealed record LearningRateSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <param name="peakLearningRate">The rate at the end of warm-up (positive).</param>
    /// <param name="warmupSteps">Warm-up steps (0 or more, fewer than <paramref name="totalSteps"/>).</param>
    /// <param name="totalSteps">Optimizer steps in the whole run (at least 1).</param>
    /// <param name="minRatio">The final rate as a fraction of the peak, in [0, 1].</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public LearningRateSchedule(double peakLearningRate, long warmupSteps, long totalSteps, double minRatio = 0.1)
    {
        if (!(peakLearningRate > 0) || double.IsInfinity(peakLearningRate))
            throw new ArgumentOutOfRangeException(nameof(peakLearningRate), peakLearningRate, "The peak learning rate must be positive and finite.");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "At least one step is needed.");
        if (warmupSteps < 0 || warmupSteps >= totalSteps)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"Warm-up steps must be in [0, {totalSteps}) (fewer than the total steps).");
        if (!(minRatio >= 0 && minRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(minRatio), minRatio, "The minimum ratio must be in [0, 1].");
        PeakLearningRate = peakLearningRate;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinRatio = minRatio;
    }

    /// <summary>The rate at the end of warm-up.</summary>
    public double PeakLearningRate { get; }

    /// <summary>The number of warm-up steps.</summary>
    public long WarmupSteps { get; }

    /// <summary>The number of steps in the run; the last one (<c>TotalSteps − 1</c>) runs at the minimum.</summary>
    public long TotalSteps { get; }

    /// <summary>The final rate as a fraction of the peak.</summary>
    public double MinRatio { get; }

    /// <summary>The final (minimum) rate.</summary>
    public double MinLearningRate => PeakLearningRate * MinRatio;

    /// <summary>The step at which the rate peaks (the last warm-up step, or 0).</summary>
    public long PeakStep => Math.Max(WarmupSteps - 1, 0);

    /// <summary>The learning rate of optimizer step <paramref name="step"/>.</summary>
    /// <param name="step">The zero-based step; steps past the end keep the minimum.</param>
    /// <returns>The rate.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is negative.</exception>
    public double At(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < PeakStep) return PeakLearningRate * (step + 1) / WarmupSteps;
        long decaySteps = TotalSteps - 1 - PeakStep;
        double progress = decaySteps <= 0 ? 1.0 : Math.Min(1.0, (double)(step - PeakStep) / decaySteps);
        double cosine = 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return MinLearningRate + (PeakLearningRate - MinLearningRate) * cosine;
    }
}
