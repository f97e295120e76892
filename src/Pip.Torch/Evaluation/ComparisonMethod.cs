using Pip.Torch.Pruning;

namespace Pip.Torch.Evaluation;

/// <summary>One pruning method of a comparison: an importance metric, a strategy and, for PIP, the consistency discriminator.</summary>
/// <remarks>Immutable. The metric's options (norm, longest sample) come from <see cref="ComparisonOptions"/>, the same for every method.</remarks>
public sealed record ComparisonMethod
{
    /// <summary>A short identifier (file names, command lines): <c>pip</c>, <c>block-influence</c>, <c>sleb</c>, ...</summary>
    public required string Key { get; init; }

    /// <summary>The name shown in tables and charts: <c>PIP</c>, <c>ShortGPT (BI)</c>, ...</summary>
    public required string Name { get; init; }

    /// <summary>The importance metric's name (one of <see cref="TorchMetrics.AllNames"/>).</summary>
    public required string Metric { get; init; }

    /// <summary>The strategy: <c>iterative</c> (score, remove the lowest layer, rescore) or <c>one-shot</c> (score once, remove the lowest layers together).</summary>
    public required string Strategy { get; init; }

    /// <summary>Whether the consistency discriminator filters candidates (needs a metric with perturbation sets).</summary>
    public bool ConsistencyDiscriminator { get; init; }

    /// <summary>What the method is, in words (the paper it comes from).</summary>
    public string? Description { get; init; }

    /// <summary>Whether the metric scores perturbed twins (PIP's PertImport).</summary>
    public bool UsesPerturbations => Metric == TorchMetricConstants.PertImport;
}

/// <summary>The methods of PIP's comparison (Table 2) and ablation (Table 3), and parsing of method lists.</summary>
public static class ComparisonMethods
{
    /// <summary>PIP: PertImport, iterative, consistency discriminator.</summary>
    public static ComparisonMethod Pip { get; } = new()
    {
        Key = "pip", Name = "PIP", Metric = TorchMetricConstants.PertImport, Strategy = StrategyConstants.IterativeGreedyName,
        ConsistencyDiscriminator = true, Description = "PIP: PertImport (gradient difference between texts and perturbed twins), iterative, consistency discriminator",
    };

    /// <summary>ShortGPT: Block Influence, one-shot.</summary>
    public static ComparisonMethod ShortGpt { get; } = new()
    {
        Key = TorchMetricConstants.BlockInfluence, Name = "ShortGPT (BI)", Metric = TorchMetricConstants.BlockInfluence,
        Strategy = StrategyConstants.OneShotName, Description = "ShortGPT: Block Influence (1 - cosine similarity of a layer's input and output), one-shot",
    };

    /// <summary>Shortened LLaMA's PPL criterion: perplexity drop, one-shot.</summary>
    public static ComparisonMethod ShortenedLlamaPpl { get; } = new()
    {
        Key = MetricConstants.PerplexityDrop, Name = "Shortened LLaMA (PPL)", Metric = MetricConstants.PerplexityDrop,
        Strategy = StrategyConstants.OneShotName, Description = "Shortened LLaMA PPL: calibration loss rise when a layer is skipped, one-shot",
    };

    /// <summary>SLEB: perplexity drop, iterative.</summary>
    public static ComparisonMethod Sleb { get; } = new()
    {
        Key = "sleb", Name = "SLEB", Metric = MetricConstants.PerplexityDrop, Strategy = StrategyConstants.IterativeGreedyName,
        Description = "SLEB: calibration loss rise when a layer is skipped, iterative",
    };

    /// <summary>Shortened LLaMA's Taylor+: Σ|w·∂L/∂w|, one-shot.</summary>
    public static ComparisonMethod Taylor { get; } = new()
    {
        Key = TorchMetricConstants.Taylor, Name = "Taylor+", Metric = TorchMetricConstants.Taylor, Strategy = StrategyConstants.OneShotName,
        Description = "Shortened LLaMA Taylor+: sum of |weight x gradient|, one-shot",
    };

    /// <summary>Mean weight magnitude, one-shot.</summary>
    public static ComparisonMethod Magnitude { get; } = new()
    {
        Key = TorchMetricConstants.Magnitude, Name = "Magnitude", Metric = TorchMetricConstants.Magnitude, Strategy = StrategyConstants.OneShotName,
        Description = "Mean weight magnitude, one-shot",
    };

    /// <summary>Random layers (seeded), one-shot.</summary>
    public static ComparisonMethod Random { get; } = new()
    {
        Key = MetricConstants.Random, Name = "Random", Metric = MetricConstants.Random, Strategy = StrategyConstants.OneShotName,
        Description = "Seeded random scores, one-shot",
    };

    /// <summary>PIP's ablation "perturbation only": PertImport and the discriminator, one-shot (no iteration).</summary>
    public static ComparisonMethod PerturbationOnly { get; } = new()
    {
        Key = "pip-perturbation-only", Name = "PIP perturbation only", Metric = TorchMetricConstants.PertImport,
        Strategy = StrategyConstants.OneShotName, ConsistencyDiscriminator = true,
        Description = "PIP ablation: PertImport with the consistency discriminator, one-shot (no iteration)",
    };

    /// <summary>PIP's ablation "iteration only": the plain gradient norm, iterative (no perturbation).</summary>
    public static ComparisonMethod IterationOnly { get; } = new()
    {
        Key = "pip-iteration-only", Name = "PIP iteration only", Metric = TorchMetricConstants.GradientNorm,
        Strategy = StrategyConstants.IterativeGreedyName,
        Description = "PIP ablation: plain gradient norm per parameter, iterative (no perturbation)",
    };

    /// <summary>The methods of PIP's Table 2, PIP first: PIP, ShortGPT, Shortened LLaMA PPL, SLEB, Taylor+, magnitude, random.</summary>
    public static IReadOnlyList<ComparisonMethod> Defaults { get; } = [Pip, ShortGpt, ShortenedLlamaPpl, Sleb, Taylor, Magnitude, Random];

    /// <summary>PIP's Table 3: full PIP, perturbation only, iteration only.</summary>
    public static IReadOnlyList<ComparisonMethod> Ablation { get; } = [Pip, PerturbationOnly, IterationOnly];

    /// <summary>Every named method.</summary>
    public static IReadOnlyList<ComparisonMethod> All { get; } = [.. Defaults, PerturbationOnly, IterationOnly];

    /// <summary>The keys <see cref="Parse"/> accepts besides <c>METRIC:STRATEGY</c>, and the group names of <see cref="ParseList"/>.</summary>
    public static IReadOnlyList<string> Keys { get; } = [.. All.Select(m => m.Key)];

    /// <summary>The group names <see cref="ParseList"/> expands: <c>default</c> (<see cref="Defaults"/>) and <c>ablation</c> (<see cref="Ablation"/>).</summary>
    public static IReadOnlyList<string> Groups { get; } = ["default", "ablation"];

    /// <summary>
    /// A method from its key (<see cref="Keys"/>), or <c>METRIC:STRATEGY</c> for any metric of
    /// <see cref="TorchMetrics.AllNames"/> and strategy <c>iterative</c> or <c>one-shot</c> (<c>pip:iterative</c>
    /// adds the discriminator, as PIP does).
    /// </summary>
    /// <param name="spec">The key or <c>METRIC:STRATEGY</c> (case-insensitive).</param>
    /// <returns>The method.</returns>
    /// <exception cref="ArgumentException">The text names no method; the message lists the valid ones.</exception>
    public static ComparisonMethod Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var text = spec.Trim().ToLowerInvariant();
        if (All.FirstOrDefault(m => m.Key == text) is { } known) return known;
        var parts = text.Split(':');
        if (parts.Length == 2 && TorchMetrics.AllNames.Contains(parts[0])
            && parts[1] is StrategyConstants.IterativeGreedyName or StrategyConstants.OneShotName)
        {
            var pip = parts[0] == TorchMetricConstants.PertImport;
            return new ComparisonMethod
            {
                Key = $"{parts[0]}-{parts[1]}",
                Name = $"{parts[0]} ({parts[1]})",
                Metric = parts[0],
                Strategy = parts[1],
                ConsistencyDiscriminator = pip,
                Description = $"metric {parts[0]}, strategy {parts[1]}{(pip ? ", consistency discriminator" : "")}",
            };
        }

        throw new ArgumentException(
            $"Unknown method '{spec}'. Use one of {string.Join(", ", Keys)}, or METRIC:STRATEGY with METRIC in {string.Join(", ", TorchMetrics.AllNames)} and STRATEGY iterative or one-shot.",
            nameof(spec));
    }

    /// <summary>Methods from a comma-separated list of keys, <c>METRIC:STRATEGY</c> items and groups (<see cref="Groups"/>); repeats are kept once.</summary>
    /// <param name="list">The list, e.g. <c>pip,block-influence,sleb</c> or <c>default,ablation</c>.</param>
    /// <returns>The methods, in order of first mention.</returns>
    /// <exception cref="ArgumentException">An item names no method, or the list is empty.</exception>
    public static IReadOnlyList<ComparisonMethod> ParseList(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var methods = new List<ComparisonMethod>();
        foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            IEnumerable<ComparisonMethod> found = item.ToLowerInvariant() switch
            {
                "default" => Defaults,
                "ablation" => Ablation,
                _ => [Parse(item)],
            };
            foreach (var method in found)
            {
                if (methods.All(m => m.Key != method.Key)) methods.Add(method);
            }
        }

        if (methods.Count == 0) throw new ArgumentException("The method list is empty.", nameof(list));
        return methods;
    }
}
