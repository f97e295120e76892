using System.ComponentModel.DataAnnotations;
using Pip.Internal;
using Pip.Training;

namespace Pip.Torch.Training.Idea;

/// <summary>Defaults of IDEA Prune (<see cref="IdeaPruneHook"/>) where the paper leaves the choice open.</summary>
public static class IdeaPruneConstants
{
    /// <summary>
    /// Default β of the exponential moving average of neuron scores: 0.85, the smoothing used for sensitivity scores
    /// by PLATON (Zhang et al., 2022) and LoSparse (Li et al., 2023), on which IDEA Prune's scores build.
    /// </summary>
    public const double DefaultEmaBeta = 0.85;

    /// <summary>
    /// Default number of optimizer steps between two score-and-mask updates: 10 (the scores cost one element-wise
    /// product per FFN weight; ten steps give ~the paper's "every few steps" while keeping the masks fine-grained).
    /// </summary>
    public const int DefaultUpdateInterval = 10;

    /// <summary>Default shape of the kept-width schedule: cubic, as in gradual magnitude pruning (Zhu &amp; Gupta, 2017).</summary>
    public const WidthScheduleShape DefaultShape = WidthScheduleShape.Cubic;

    /// <summary>The file in a trainer checkpoint folder that holds the scores, masks and update count.</summary>
    public const string StateFileName = "idea_prune_state.json";
}

/// <summary>Settings of IDEA Prune's gradual FFN-width pruning inside a training run.</summary>
/// <remarks>Steps are zero-based optimizer steps of the one training run (and its one learning-rate schedule).</remarks>
public sealed class IdeaPruneOptions : IValidatableObject
{
    /// <summary>The intermediate (FFN) width every layer keeps at the end (at least 1, below the model's width).</summary>
    [Range(1, int.MaxValue)]
    public int TargetIntermediateSize { get; set; } = 1;

    /// <summary>The first step of the pruning window (its first score-and-mask update).</summary>
    [Range(0, int.MaxValue)]
    public int StartStep { get; set; }

    /// <summary>The step after the window: the width reaches the target at step <c>EndStep − 1</c>; later steps are recovery.</summary>
    [Range(1, int.MaxValue)]
    public int EndStep { get; set; } = 1;

    /// <summary>Steps between two score-and-mask updates inside the window. Default <see cref="IdeaPruneConstants.DefaultUpdateInterval"/>.</summary>
    [Range(1, int.MaxValue)]
    public int UpdateInterval { get; set; } = IdeaPruneConstants.DefaultUpdateInterval;

    /// <summary>β of the score average <c>s ← β·s + (1 − β)·new</c>, in [0, 1). Default <see cref="IdeaPruneConstants.DefaultEmaBeta"/>.</summary>
    [Range(0.0, 0.999999)]
    public double EmaBeta { get; set; } = IdeaPruneConstants.DefaultEmaBeta;

    /// <summary>The shape of the kept-width schedule. Default <see cref="IdeaPruneConstants.DefaultShape"/>.</summary>
    public WidthScheduleShape Shape { get; set; } = IdeaPruneConstants.DefaultShape;

    /// <summary>Checks every setting; throws one exception that lists all problems.</summary>
    /// <exception cref="ValidationException">A setting is invalid; the message lists each one.</exception>
    public void Validate() => OptionsValidation.ThrowIfInvalid(this, "IDEA Prune options");

    /// <summary>Cross-field checks.</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (EndStep <= StartStep)
            yield return new ValidationResult($"EndStep ({EndStep}) must be greater than StartStep ({StartStep}).", [nameof(EndStep)]);
        if (!Enum.IsDefined(Shape))
            yield return new ValidationResult($"Shape ({(int)Shape}) is not a schedule shape.", [nameof(Shape)]);
        if (double.IsNaN(EmaBeta))
            yield return new ValidationResult("EmaBeta must be a number in [0, 1).", [nameof(EmaBeta)]);
    }

    /// <summary>The kept-width schedule for a model of the given width.</summary>
    /// <param name="fullWidth">The model's intermediate width (above <see cref="TargetIntermediateSize"/>).</param>
    /// <returns>The schedule.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The target is not below <paramref name="fullWidth"/>.</exception>
    public GradualWidthSchedule CreateSchedule(int fullWidth)
    {
        if (TargetIntermediateSize >= fullWidth)
            throw new ArgumentOutOfRangeException(nameof(fullWidth), fullWidth, $"The target intermediate size ({TargetIntermediateSize}) must be below the model's ({fullWidth}).");
        return new GradualWidthSchedule(fullWidth, TargetIntermediateSize, StartStep, EndStep, UpdateInterval, Shape);
    }

    /// <summary>A copy whose later changes do not affect this one.</summary>
    /// <returns>The copy.</returns>
    public IdeaPruneOptions Clone() => (IdeaPruneOptions)MemberwiseClone();
}
