namespace Pip.Internal;

/// <summary>Derives independent, reproducible seeds from a run's seed (SplitMix64 mixing; stable across processes and .NET versions).</summary>
internal static class Seeds
{
    /// <summary>Tag mixed in for the metric's seed of a round.</summary>
    public const int MetricTag = 0x6D657472;

    /// <summary>Tag mixed in for the perturbation seeds of a round.</summary>
    public const int PerturbationTag = 0x70657274;

    /// <summary>Mixes <paramref name="seed"/> with <paramref name="parts"/> into a new 31-bit non-negative seed.</summary>
    public static int Derive(int seed, params ReadOnlySpan<int> parts)
    {
        ulong state = Mix((ulong)(uint)seed ^ 0x9E3779B97F4A7C15UL);
        foreach (int part in parts)
        {
            state = Mix(state ^ ((ulong)(uint)part + 0x9E3779B97F4A7C15UL));
        }

        return (int)(state >> 33);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
