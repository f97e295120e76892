namespace Pip.Training;

/// <summary>How the kept width falls from the full width to the target inside a pruning window.</summary>
public enum WidthScheduleShape
{
    /// <summary>Linear: the same number of units is removed at every update.</summary>
    Linear,

    /// <summary>
    /// Cubic (Zhu &amp; Gupta's gradual magnitude pruning, 2017): <c>kept = target + (full − target)(1 − p)³</c>, so
    /// most units go early, while the network is still plastic, and the last ones slowly.
    /// </summary>
    Cubic,
}

/// <summary>
/// The kept width of a gradually pruned structure (an FFN's intermediate width, say) as a pure function of the
/// optimizer step: full width before a window <c>[StartStep, EndStep)</c>, then updates every
/// <see cref="UpdateInterval"/> steps that lower it along <see cref="Shape"/>, reaching <see cref="TargetWidth"/> at
/// the window's last step (<c>EndStep − 1</c>), and the target from then on.
/// </summary>
/// <remarks>
/// <para>The update steps are <c>StartStep + j·UpdateInterval</c> (j = 0, 1, …) below <c>EndStep</c>, plus
/// <c>EndStep − 1</c>, which always is one. At update step <c>u</c> the progress is
/// <c>p = (u − StartStep + 1) / (EndStep − StartStep)</c> (so p = 1 at the last step of the window) and the kept width
/// is <c>TargetWidth + ⌈(FullWidth − TargetWidth)·r(p)⌉</c> with <c>r(p) = 1 − p</c> (linear) or <c>(1 − p)³</c>
/// (cubic). Rounding up keeps the width at or above the target and never rising; between updates it holds.</para>
/// </remarks>
public sealed record GradualWidthSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <param name="fullWidth">The width before pruning (at least 1).</param>
    /// <param name="targetWidth">The width at the end of the window, in [1, <paramref name="fullWidth"/>].</param>
    /// <param name="startStep">The first step of the window (0 or more).</param>
    /// <param name="endStep">The step after the window's last one (greater than <paramref name="startStep"/>).</param>
    /// <param name="updateInterval">Steps between two updates (at least 1).</param>
    /// <param name="shape">The shape of the decrease.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public GradualWidthSchedule(int fullWidth, int targetWidth, long startStep, long endStep, int updateInterval = 1, WidthScheduleShape shape = WidthScheduleShape.Cubic)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fullWidth, 1);
        if (targetWidth < 1 || targetWidth > fullWidth)
            throw new ArgumentOutOfRangeException(nameof(targetWidth), targetWidth, $"The target width must be in [1, {fullWidth}] (the full width).");
        ArgumentOutOfRangeException.ThrowIfNegative(startStep);
        if (endStep <= startStep)
            throw new ArgumentOutOfRangeException(nameof(endStep), endStep, $"The window must end after it starts (start {startStep}).");
        ArgumentOutOfRangeException.ThrowIfLessThan(updateInterval, 1);
        if (!Enum.IsDefined(shape)) throw new ArgumentOutOfRangeException(nameof(shape), shape, "Unknown schedule shape.");
        FullWidth = fullWidth;
        TargetWidth = targetWidth;
        StartStep = startStep;
        EndStep = endStep;
        UpdateInterval = updateInterval;
        Shape = shape;
    }

    /// <summary>The width before the window.</summary>
    public int FullWidth { get; }

    /// <summary>The width from the window's last step on.</summary>
    public int TargetWidth { get; }

    /// <summary>The first step of the window (its first update).</summary>
    public long StartStep { get; }

    /// <summary>The step after the window; <c>EndStep − 1</c> is its last update.</summary>
    public long EndStep { get; }

    /// <summary>Steps between two updates.</summary>
    public int UpdateInterval { get; }

    /// <summary>The shape of the decrease.</summary>
    public WidthScheduleShape Shape { get; }

    /// <summary>Whether the masks (and scores) are updated at <paramref name="step"/>.</summary>
    /// <param name="step">The zero-based optimizer step.</param>
    /// <returns>True inside the window on the update grid, and at the window's last step.</returns>
    public bool IsUpdateStep(long step) =>
        step >= StartStep && step < EndStep && ((step - StartStep) % UpdateInterval == 0 || step == EndStep - 1);

    /// <summary>The number of update steps in the window.</summary>
    public long UpdateCount
    {
        get
        {
            long length = EndStep - StartStep;
            long onGrid = (length - 1) / UpdateInterval + 1;
            return (length - 1) % UpdateInterval == 0 ? onGrid : onGrid + 1;
        }
    }

    /// <summary>The progress <c>p</c> in (0, 1] of an update made at <paramref name="step"/> (0 before the window, 1 after it).</summary>
    /// <param name="step">The zero-based optimizer step.</param>
    /// <returns>The fraction of the window done once that step's update is made.</returns>
    public double ProgressAt(long step)
    {
        if (step < StartStep) return 0;
        if (step >= EndStep - 1) return 1;
        return (double)(step - StartStep + 1) / (EndStep - StartStep);
    }

    /// <summary>The width a given progress asks for.</summary>
    /// <param name="progress">The progress, clamped to [0, 1].</param>
    /// <returns><c>TargetWidth + ⌈(FullWidth − TargetWidth)·r(p)⌉</c>.</returns>
    public int WidthAtProgress(double progress)
    {
        double p = Math.Clamp(progress, 0.0, 1.0);
        double remaining = Shape == WidthScheduleShape.Linear ? 1 - p : Math.Pow(1 - p, 3);
        int removable = FullWidth - TargetWidth;
        // The tiny tolerance keeps exact products (e.g. 0.5 · 8) from rounding up through floating-point noise.
        int extra = (int)Math.Ceiling(removable * remaining - 1e-9);
        return TargetWidth + Math.Clamp(extra, 0, removable);
    }

    /// <summary>The kept width in force during (and after) optimizer step <paramref name="step"/>: that of the last update at or before it.</summary>
    /// <param name="step">The zero-based optimizer step (0 or more).</param>
    /// <returns>The width.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is negative.</exception>
    public int KeptWidthAt(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < StartStep) return FullWidth;
        if (step >= EndStep - 1) return TargetWidth;
        long lastUpdate = StartStep + (step - StartStep) / UpdateInterval * UpdateInterval;
        return WidthAtProgress(ProgressAt(lastUpdate));
    }
}
