using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Pip;

/// <summary>Options of Pip in a service container: the run options plus which metric, perturber, strategy and filters to use, and their options.</summary>
/// <remarks>Validated by DataAnnotations and by Pip's own validator (cross-field rules), at start and when first read.</remarks>
public sealed class PipOptions : PipelineOptions
{
    /// <summary>Name of the default importance metric (see <see cref="IImportanceMetricProvider"/>). Default <see cref="MetricConstants.Pip"/> (registered by Pip.Torch).</summary>
    [Required]
    public string Metric { get; set; } = MetricConstants.Pip;

    /// <summary>Name of the perturber: a registered <see cref="IPerturber"/>, or <c>lexicon</c>, <c>random-char</c> or <c>chat</c>. Default <see cref="PerturbationConstants.LexiconPerturberName"/>.</summary>
    [Required]
    public string Perturber { get; set; } = PerturbationConstants.LexiconPerturberName;

    /// <summary>Name of the strategy: a registered <see cref="IPruningStrategy"/>, or <c>iterative</c> or <c>one-shot</c>. Default <see cref="StrategyConstants.IterativeGreedyName"/>.</summary>
    [Required]
    public string Strategy { get; set; } = StrategyConstants.IterativeGreedyName;

    /// <summary>Whether to add the consistency discriminator when the metric uses perturbations. Default true.</summary>
    public bool UseConsistencyDiscriminator { get; set; } = true;

    /// <summary>Options of the consistency discriminator.</summary>
    [ValidateObjectMembers]
    public ConsistencyDiscriminatorOptions Discriminator { get; set; } = new();

    /// <summary>Options of the layer guard (added when it protects any layer).</summary>
    [ValidateObjectMembers]
    public LayerGuardOptions Guard { get; set; } = new();

    /// <summary>Options of the lexicon perturber.</summary>
    [ValidateObjectMembers]
    public LexiconPerturberOptions Lexicon { get; set; } = new();

    /// <summary>Options of the random-character perturber.</summary>
    [ValidateObjectMembers]
    public RandomCharPerturberOptions RandomChar { get; set; } = new();

    /// <summary>Options of the chat-client perturber (<c>chat</c>; needs an <c>IChatClient</c> in the container; its fallback is the lexicon perturber with <see cref="Lexicon"/>).</summary>
    [ValidateObjectMembers]
    public ChatClientPerturberOptions ChatClient { get; set; } = new();

    /// <summary>Options of the iterative greedy strategy.</summary>
    [ValidateObjectMembers]
    public IterativeGreedyStrategyOptions IterativeGreedy { get; set; } = new();

    /// <summary>Name of the default width importance metric (see <see cref="IWidthImportanceMetricProvider"/>). Default <c>taylor</c> (registered by Pip.Torch).</summary>
    [Required]
    public string WidthMetric { get; set; } = "taylor";

    /// <summary>Options of width pruning (<see cref="IWidthPruningPipelineFactory"/>).</summary>
    [ValidateObjectMembers]
    public WidthPruningOptions Width { get; set; } = new();

    /// <summary>Options of the perplexity-drop metric.</summary>
    [ValidateObjectMembers]
    public PerplexityDropMetricOptions PerplexityDrop { get; set; } = new();

    private protected override void AddMoreErrors(List<string> errors, string path)
    {
        if (UseConsistencyDiscriminator && PerturbationSets < 2)
        {
            errors.Add($"{path}.{nameof(PerturbationSets)}: the consistency discriminator compares scores across perturbation sets and needs at least 2; got {PerturbationSets} (or set {nameof(UseConsistencyDiscriminator)} to false).");
        }
    }
}

/// <summary>Pip's cross-field checks of <see cref="PipOptions"/> (DataAnnotations attributes are checked by ValidateDataAnnotations).</summary>
internal sealed class PipOptionsValidator : IValidateOptions<PipOptions>
{
    public ValidateOptionsResult Validate(string? name, PipOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        Internal.OptionsValidation.AddCheckErrors(options, nameof(PipOptions), errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
