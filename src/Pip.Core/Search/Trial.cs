using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>How a trial ended.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TrialStatus>))]
public enum TrialStatus
{
    /// <summary>The objective returned a value (not NaN).</summary>
    Completed,

    /// <summary>The objective threw or returned NaN; the trial has no value and searchers ignore it.</summary>
    Failed,
}

/// <summary>
/// One evaluation of the objective: the parameters tried, the objective's value (lower is better) and how it ended.
/// Serialisable with <see cref="System.Text.Json.JsonSerializer"/> (infinite values as <c>"Infinity"</c>).
/// </summary>
public sealed record Trial
{
    /// <summary>Position of the trial in its search's history, from 0.</summary>
    public required int Number { get; init; }

    /// <summary>The parameters tried.</summary>
    public required ParameterAssignment Parameters { get; init; }

    /// <summary>How the trial ended.</summary>
    public required TrialStatus Status { get; init; }

    /// <summary>The objective's value (lower is better) when <see cref="Status"/> is <see cref="TrialStatus.Completed"/>, else null.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public double? Value { get; init; }

    /// <summary>Why the trial failed, or null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }

    /// <summary>How long the objective ran.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>Whether the trial completed with a value searchers can learn from (not NaN).</summary>
    [JsonIgnore]
    public bool HasValue => Status == TrialStatus.Completed && Value is { } value && !double.IsNaN(value);

    /// <summary>A completed trial.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is NaN or <paramref name="number"/> is negative.</exception>
    public static Trial Completed(int number, ParameterAssignment parameters, double value, TimeSpan duration = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(number);
        ArgumentNullException.ThrowIfNull(parameters);
        if (double.IsNaN(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), "A completed trial needs a value that is not NaN.");
        }

        return new Trial { Number = number, Parameters = parameters, Status = TrialStatus.Completed, Value = value, Duration = duration };
    }

    /// <summary>A failed trial.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="number"/> is negative.</exception>
    public static Trial Failed(int number, ParameterAssignment parameters, string error, TimeSpan duration = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(number);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(error);
        return new Trial { Number = number, Parameters = parameters, Status = TrialStatus.Failed, Error = error, Duration = duration };
    }

    /// <summary>The lowest-valued completed trial (the earliest of equals), or null when none completed.</summary>
    public static Trial? Best(IEnumerable<Trial> trials)
    {
        ArgumentNullException.ThrowIfNull(trials);
        Trial? best = null;
        foreach (Trial trial in trials)
        {
            if (trial.HasValue && (best is null || trial.Value!.Value < best.Value!.Value))
            {
                best = trial;
            }
        }

        return best;
    }

    /// <summary>
    /// The best-so-far curve: for each trial in order, the lowest value of the completed trials up to it; NaN until
    /// the first completed trial.
    /// </summary>
    public static IReadOnlyList<double> BestSoFar(IEnumerable<Trial> trials)
    {
        ArgumentNullException.ThrowIfNull(trials);
        var curve = new List<double>();
        double best = double.NaN;
        foreach (Trial trial in trials)
        {
            if (trial.HasValue && (double.IsNaN(best) || trial.Value!.Value < best))
            {
                best = trial.Value!.Value;
            }

            curve.Add(best);
        }

        return curve;
    }

    /// <summary>Number, status, value or error, and parameters.</summary>
    public override string ToString() =>
        $"#{Number} {Status}: {(HasValue ? Value!.Value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture) : Error ?? "no value")} ({Parameters})";
}
