namespace Pip;

/// <summary>Makes the perturbed twin x′ of a calibration text x: edits that keep the syntax but change the meaning.</summary>
/// <remarks>
/// <para>Determinism: the same sample and seed must give the same twin, so a run can be repeated and re-checked.</para>
/// <para>Thread-safety: implementations must be safe to call concurrently for different samples.</para>
/// <para>Ownership: the returned record belongs to the caller; the perturber keeps no reference to it.</para>
/// </remarks>
public interface IPerturber
{
    /// <summary>Short name used in reports and options (for example <c>lexicon</c>).</summary>
    string Name { get; }

    /// <summary>Perturbs one sample.</summary>
    /// <param name="sample">The sample to perturb.</param>
    /// <param name="seed">Seed of this perturbation; different seeds give independent perturbations.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>The twin with its recorded edits.</returns>
    ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default);
}
