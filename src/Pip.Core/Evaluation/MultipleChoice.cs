using System.Text;

namespace Pip.Evaluation;

/// <summary>
/// One multiple-choice item: one log-likelihood request per choice (a shared context with one continuation per choice,
/// or, for partial scoring, one context per choice with a shared continuation), the choices' texts (whose lengths
/// normalise <c>acc_norm</c>) and the index of the right choice.
/// </summary>
public sealed record MultipleChoiceItem
{
    /// <summary>Creates an item.</summary>
    /// <param name="requests">One request per choice (at least two).</param>
    /// <param name="choices">The choice texts, as the task defines them (without the target delimiter); one per request.</param>
    /// <param name="gold">The index of the right choice.</param>
    /// <exception cref="ArgumentException">The counts differ, there are fewer than two choices, or the gold index is out of range.</exception>
    public MultipleChoiceItem(IReadOnlyList<LoglikelihoodRequest> requests, IReadOnlyList<string> choices, int gold)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(choices);
        if (requests.Count != choices.Count)
            throw new ArgumentException($"An item needs one request per choice; got {requests.Count} requests and {choices.Count} choices.", nameof(requests));
        if (choices.Count < 2) throw new ArgumentException($"An item needs at least two choices; got {choices.Count}.", nameof(choices));
        if (gold < 0 || gold >= choices.Count)
            throw new ArgumentOutOfRangeException(nameof(gold), gold, $"The gold index must be in [0, {choices.Count}).");
        Requests = requests;
        Choices = choices;
        Gold = gold;
    }

    /// <summary>One request per choice.</summary>
    public IReadOnlyList<LoglikelihoodRequest> Requests { get; }

    /// <summary>The choice texts (their lengths normalise <c>acc_norm</c>).</summary>
    public IReadOnlyList<string> Choices { get; }

    /// <summary>The index of the right choice.</summary>
    public int Gold { get; }
}

/// <summary>A multiple-choice task ready to score.</summary>
/// <param name="Name">The task's name (lm-evaluation-harness's, e.g. <c>arc_easy</c>).</param>
/// <param name="Items">The items.</param>
/// <param name="ReportsAccNorm">Whether the task reports <c>acc_norm</c> besides <c>acc</c>.</param>
public sealed record MultipleChoiceTask(string Name, IReadOnlyList<MultipleChoiceItem> Items, bool ReportsAccNorm);

/// <summary>The length that divides a choice's log-likelihood for <c>acc_norm</c>.</summary>
public enum LengthUnit
{
    /// <summary>UTF-8 bytes of the choice text.</summary>
    Utf8Bytes,

    /// <summary>Unicode code points of the choice text (Python's <c>len</c>, what lm-evaluation-harness's <c>acc_norm</c> uses; the same as bytes for ASCII).</summary>
    CodePoints,
}

/// <summary>The outcome of one item.</summary>
/// <param name="LogLikelihoods">The log-likelihood of each choice.</param>
/// <param name="Prediction">The argmax of the log-likelihoods (first on ties).</param>
/// <param name="NormalizedPrediction">The argmax of log-likelihood / choice length (first on ties).</param>
/// <param name="Gold">The right choice.</param>
public sealed record ItemScore(IReadOnlyList<double> LogLikelihoods, int Prediction, int NormalizedPrediction, int Gold)
{
    /// <summary>Whether <see cref="Prediction"/> is right (<c>acc</c>).</summary>
    public bool Correct => Prediction == Gold;

    /// <summary>Whether <see cref="NormalizedPrediction"/> is right (<c>acc_norm</c>).</summary>
    public bool CorrectNormalized => NormalizedPrediction == Gold;
}

/// <summary>The result of one task.</summary>
/// <param name="Task">The task's name.</param>
/// <param name="Count">The number of items.</param>
/// <param name="Acc">Mean accuracy.</param>
/// <param name="AccStderr">Standard error of <paramref name="Acc"/> (sample standard deviation / √n), null for fewer than two items.</param>
/// <param name="AccNorm">Mean length-normalised accuracy, null where the task does not report it.</param>
/// <param name="AccNormStderr">Standard error of <paramref name="AccNorm"/>, or null.</param>
/// <param name="Items">The per-item outcomes.</param>
public sealed record TaskResult(string Task, int Count, double Acc, double? AccStderr, double? AccNorm, double? AccNormStderr, IReadOnlyList<ItemScore> Items)
{
    /// <summary><see cref="AccNorm"/> where the task reports it, else <see cref="Acc"/>.</summary>
    public double AccNormOrAcc => AccNorm ?? Acc;
}

/// <summary>The results of several tasks.</summary>
/// <param name="Tasks">Each task's result, in the order run.</param>
public sealed record ZeroShotReport(IReadOnlyList<TaskResult> Tasks)
{
    /// <summary>The mean over tasks of <c>acc</c>; NaN without tasks.</summary>
    public double AverageAcc => Tasks.Count == 0 ? double.NaN : Tasks.Average(t => t.Acc);

    /// <summary>The mean over tasks of <c>acc_norm</c> where a task reports it and <c>acc</c> where not; NaN without tasks.</summary>
    public double AverageAccNormOrAcc => Tasks.Count == 0 ? double.NaN : Tasks.Average(t => t.AccNormOrAcc);
}

/// <summary>Progress of a zero-shot evaluation.</summary>
/// <param name="Task">The task being run.</param>
/// <param name="ItemsDone">Items of that task done.</param>
/// <param name="ItemsTotal">Items of that task in all.</param>
public sealed record ZeroShotProgress(string Task, int ItemsDone, int ItemsTotal);

/// <summary>
/// Zero-shot multiple-choice evaluation with lm-evaluation-harness's semantics: each choice's continuation is scored by
/// its summed log-likelihood; <c>acc</c> takes the argmax, <c>acc_norm</c> the argmax of log-likelihood divided by the
/// choice's length.
/// </summary>
public static class ZeroShotEvaluator
{
    /// <summary>Scores one item from its choices' log-likelihoods.</summary>
    /// <param name="item">The item.</param>
    /// <param name="logLikelihoods">One log-likelihood per choice.</param>
    /// <param name="unit">The length unit of <c>acc_norm</c>.</param>
    /// <returns>The outcome.</returns>
    public static ItemScore ScoreItem(MultipleChoiceItem item, IReadOnlyList<double> logLikelihoods, LengthUnit unit = LengthUnit.Utf8Bytes)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(logLikelihoods);
        if (logLikelihoods.Count != item.Choices.Count)
            throw new ArgumentException($"Got {logLikelihoods.Count} log-likelihoods for {item.Choices.Count} choices.", nameof(logLikelihoods));
        var normalized = new double[logLikelihoods.Count];
        for (var i = 0; i < normalized.Length; i++) normalized[i] = logLikelihoods[i] / Length(item.Choices[i], unit);
        return new ItemScore(logLikelihoods.ToArray(), ArgMax(logLikelihoods), ArgMax(normalized), item.Gold);
    }

    /// <summary>The length of a choice text in a unit.</summary>
    /// <param name="text">The text.</param>
    /// <param name="unit">The unit.</param>
    /// <returns>The length.</returns>
    public static int Length(string text, LengthUnit unit)
    {
        ArgumentNullException.ThrowIfNull(text);
        return unit switch
        {
            LengthUnit.Utf8Bytes => Encoding.UTF8.GetByteCount(text),
            LengthUnit.CodePoints => text.EnumerateRunes().Count(),
            _ => throw new ArgumentOutOfRangeException(nameof(unit), unit, "Unknown length unit."),
        };
    }

    /// <summary>Aggregates item outcomes into a task result.</summary>
    /// <param name="task">The task's name.</param>
    /// <param name="items">The outcomes.</param>
    /// <param name="reportsAccNorm">Whether to report <c>acc_norm</c>.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">There are no items.</exception>
    public static TaskResult Aggregate(string task, IReadOnlyList<ItemScore> items, bool reportsAccNorm)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) throw new ArgumentException($"Task '{task}' has no items to aggregate.", nameof(items));
        var (acc, accErr) = MeanAndStderr(items.Select(s => s.Correct ? 1.0 : 0.0).ToArray());
        double? accNorm = null, accNormErr = null;
        if (reportsAccNorm) (accNorm, accNormErr) = MeanAndStderr(items.Select(s => s.CorrectNormalized ? 1.0 : 0.0).ToArray());
        return new TaskResult(task, items.Count, acc, accErr, accNorm, accNormErr, items);
    }

    /// <summary>Runs one task.</summary>
    /// <param name="task">The task.</param>
    /// <param name="scorer">The model's scorer; called once per item with that item's requests.</param>
    /// <param name="unit">The length unit of <c>acc_norm</c>.</param>
    /// <param name="progress">Receives a report after every item, or null.</param>
    /// <param name="cancellationToken">Checked before every item.</param>
    /// <returns>The result.</returns>
    public static TaskResult EvaluateTask(MultipleChoiceTask task, ILoglikelihoodScorer scorer, LengthUnit unit = LengthUnit.Utf8Bytes,
        IProgress<ZeroShotProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(scorer);
        var scores = new List<ItemScore>(task.Items.Count);
        foreach (var item in task.Items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var results = scorer.Score(item.Requests, cancellationToken);
            if (results.Count != item.Requests.Count)
                throw new InvalidOperationException($"The scorer returned {results.Count} results for {item.Requests.Count} requests.");
            scores.Add(ScoreItem(item, results.Select(r => r.LogLikelihood).ToArray(), unit));
            progress?.Report(new ZeroShotProgress(task.Name, scores.Count, task.Items.Count));
        }
        return Aggregate(task.Name, scores, task.ReportsAccNorm);
    }

    /// <summary>Runs several tasks.</summary>
    /// <param name="tasks">The tasks.</param>
    /// <param name="scorer">The model's scorer.</param>
    /// <param name="unit">The length unit of <c>acc_norm</c>.</param>
    /// <param name="progress">Receives a report after every item, or null.</param>
    /// <param name="cancellationToken">Checked before every item.</param>
    /// <returns>The report.</returns>
    public static ZeroShotReport Evaluate(IEnumerable<MultipleChoiceTask> tasks, ILoglikelihoodScorer scorer, LengthUnit unit = LengthUnit.Utf8Bytes,
        IProgress<ZeroShotProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        return new ZeroShotReport(tasks.Select(t => EvaluateTask(t, scorer, unit, progress, cancellationToken)).ToArray());
    }

    /// <summary>The first index of the largest value (NaN never wins), as numpy's argmax for finite values.</summary>
    internal static int ArgMax(IReadOnlyList<double> values)
    {
        var best = 0;
        for (var i = 1; i < values.Count; i++)
        {
            if (values[i] > values[best] || double.IsNaN(values[best])) best = i;
        }
        return best;
    }

    /// <summary>Mean and lm-evaluation-harness's <c>mean_stderr</c> (sample standard deviation over √n; null for n &lt; 2).</summary>
    internal static (double Mean, double? Stderr) MeanAndStderr(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        if (values.Count < 2) return (mean, null);
        var ss = values.Sum(v => (v - mean) * (v - mean));
        return (mean, Math.Sqrt(ss / (values.Count - 1)) / Math.Sqrt(values.Count));
    }
}
