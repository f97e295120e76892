using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Pip.Internal;

namespace Pip;

/// <summary>Defaults of a pruning pipeline.</summary>
public static class PipelineConstants
{
    /// <summary>Default fraction of all parameters to remove at most: 0.2 (PIP's setting; LLaMA-3-8B loses 7 layers, 19.0 %).</summary>
    public const double DefaultParameterRatio = 0.2;

    /// <summary>Default seed: 42.</summary>
    public const int DefaultSeed = 42;

    /// <summary>Default number of independent perturbation sets per round: 3.</summary>
    public const int DefaultPerturbationSets = 3;

    /// <summary>Most perturbation sets per round: 1024.</summary>
    public const int MaxPerturbationSets = 1024;

    /// <summary>Default norm of norm-based metrics: L2.</summary>
    public const string DefaultNorm = "L2";
}

/// <summary>Options of a pruning run.</summary>
/// <remarks>Mutable until given to <see cref="PipelineBuilder.Configure(PipelineOptions)"/>; the pipeline keeps a copy made at build.</remarks>
public class PipelineOptions : IPipOptionsCheck
{
    /// <summary>How much to prune. Default: a ratio of <see cref="PipelineConstants.DefaultParameterRatio"/>.</summary>
    [Required]
    public PruningTarget Target { get; set; } = PruningTarget.Ratio(PipelineConstants.DefaultParameterRatio);

    /// <summary>The run's seed: perturbation and metric seeds derive from it, the round and the set. Default <see cref="PipelineConstants.DefaultSeed"/>.</summary>
    public int Seed { get; set; } = PipelineConstants.DefaultSeed;

    /// <summary>Independent perturbation sets made per round for metrics that use perturbations (the consistency discriminator needs 2 or more). Default <see cref="PipelineConstants.DefaultPerturbationSets"/>.</summary>
    [Range(1, PipelineConstants.MaxPerturbationSets)]
    public int PerturbationSets { get; set; } = PipelineConstants.DefaultPerturbationSets;

    /// <summary>The vector norm norm-based metrics use (<c>L1</c>, <c>L2</c>, <c>Linf</c>). Default <see cref="PipelineConstants.DefaultNorm"/>.</summary>
    [Required]
    public string Norm { get; set; } = PipelineConstants.DefaultNorm;

    /// <summary>Whether the report records the token ids of every sample and twin. Default true.</summary>
    public bool RecordTokenIds { get; set; } = true;

    /// <summary>Where calibration samples come from when a run is not given them.</summary>
    [ValidateObjectMembers]
    public CalibrationOptions Calibration { get; set; } = new();

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (Target is { } target)
        {
            if (target.ParameterRatio is { } ratio && !(ratio > 0 && ratio < 1))
            {
                errors.Add($"{path}.{nameof(Target)}: the parameter ratio must be in (0, 1); got {ratio}.");
            }

            if (target.Layers is { } layers && layers < 1)
            {
                errors.Add($"{path}.{nameof(Target)}: the layer count must be at least 1; got {layers}.");
            }

            if (target.ParameterRatio is null && target.Layers is null)
            {
                errors.Add($"{path}.{nameof(Target)}: set a parameter ratio or a layer count.");
            }
        }

        if (Norm is not null && !Norms.TryGet(Norm, out _))
        {
            errors.Add($"{path}.{nameof(Norm)}: unknown norm '{Norm}'; valid names: {string.Join(", ", Norms.Names)}.");
        }

        AddMoreErrors(errors, path);
    }

    /// <summary>Adds the checks of a derived options class.</summary>
    /// <param name="errors">Receives one message per problem.</param>
    /// <param name="path">Prefix of member names.</param>
    private protected virtual void AddMoreErrors(List<string> errors, string path)
    {
    }

    /// <summary>A copy of the pipeline settings whose later changes do not affect this one.</summary>
    internal PipelineOptions ClonePipelineOptions() => new()
    {
        Target = Target,
        Seed = Seed,
        PerturbationSets = PerturbationSets,
        Norm = Norm,
        RecordTokenIds = RecordTokenIds,
        Calibration = Calibration?.Clone()!,
    };
}

/// <summary>What a perturber factory is given when a run starts.</summary>
/// <param name="Samples">The run's calibration samples.</param>
/// <param name="CorpusPath">The file the samples were drawn from, or null.</param>
public sealed record PerturberContext(IReadOnlyList<CalibrationSample> Samples, string? CorpusPath);
