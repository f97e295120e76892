using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip.Torch.Training.Distillation;

/// <summary>Defaults of knowledge distillation.</summary>
public static class DistillationConstants
{
    /// <summary>Default weight of the language-model loss: 0.5 (the rest goes to the distillation term).</summary>
    public const double DefaultAlpha = 0.5;

    /// <summary>Default softmax temperature: 2 (Hinton et al., 2015, use values of this order).</summary>
    public const double DefaultTemperature = 2.0;

    /// <summary>The target id of padded positions, which neither loss term counts: −100 (PyTorch's <c>ignore_index</c>).</summary>
    public const long IgnoreIndex = -100;

    /// <summary>The smallest accepted temperature.</summary>
    public const double MinTemperature = 1e-3;

    /// <summary>The largest accepted temperature.</summary>
    public const double MaxTemperature = 1e3;
}

/// <summary>
/// Settings of the distillation loss <c>α·LM + (1 − α)·T²·KL(teacher ‖ student)</c> (see <see cref="DistillationLoss"/>).
/// </summary>
public sealed class DistillationOptions : IValidatableObject
{
    /// <summary>α, the weight of the language-model (next-token cross-entropy) loss, in [0, 1]. Default <see cref="DistillationConstants.DefaultAlpha"/>.</summary>
    [Range(0.0, 1.0)]
    public double Alpha { get; set; } = DistillationConstants.DefaultAlpha;

    /// <summary>T, the temperature both distributions are softened with. Default <see cref="DistillationConstants.DefaultTemperature"/>.</summary>
    [Range(DistillationConstants.MinTemperature, DistillationConstants.MaxTemperature)]
    public double Temperature { get; set; } = DistillationConstants.DefaultTemperature;

    /// <summary>
    /// When the student is in evaluation mode (as during <see cref="CausalLMTrainer.EvaluateLoss"/>), return the plain
    /// language-model loss, so that validation losses stay perplexities comparable with runs without distillation.
    /// Default true.
    /// </summary>
    public bool LanguageModelLossWhenEvaluating { get; set; } = true;

    /// <summary>Checks every setting; throws one exception that lists all problems.</summary>
    /// <exception cref="ValidationException">A setting is invalid; the message lists each one.</exception>
    public void Validate() => OptionsValidation.ThrowIfInvalid(this, "distillation options");

    /// <summary>Checks the values the attributes cannot (NaN).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (double.IsNaN(Alpha)) yield return new ValidationResult("Alpha must be a number in [0, 1].", [nameof(Alpha)]);
        if (double.IsNaN(Temperature)) yield return new ValidationResult("Temperature must be a positive number.", [nameof(Temperature)]);
    }

    /// <summary>A copy whose later changes do not affect this one.</summary>
    /// <returns>The copy.</returns>
    public DistillationOptions Clone() => (DistillationOptions)MemberwiseClone();
}
