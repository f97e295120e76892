using Pip.Internal;

namespace Pip.Search;

/// <summary>Options of <see cref="RandomSearcher"/>.</summary>
public sealed class RandomSearcherOptions
{
    /// <summary>Seed of the draws, or null for a random one (then see <see cref="RandomSearcher.Seed"/>).</summary>
    public int? Seed { get; set; }

    internal RandomSearcherOptions Clone() => (RandomSearcherOptions)MemberwiseClone();
}

/// <summary>
/// Draws every parameter independently and uniformly (uniformly in log space for log-scaled ones), ignoring results.
/// The draw for a history of n trials depends only on the seed and n.
/// </summary>
public sealed class RandomSearcher : ISearcher
{
    /// <summary>A random searcher over <paramref name="space"/>.</summary>
    public RandomSearcher(SearchSpace space, RandomSearcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(space);
        Space = space;
        Seed = options?.Seed ?? Random.Shared.Next();
    }

    /// <inheritdoc/>
    public SearchSpace Space { get; }

    /// <summary>The seed in use (the given one, or the one drawn when none was given).</summary>
    public int Seed { get; }

    /// <inheritdoc/>
    public ParameterAssignment Suggest(IReadOnlyList<Trial> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        return Space.FromInternal(SampleUniform(Space, SuggestionRandom(Seed, history.Count)));
    }

    /// <summary>The generator of the suggestion that follows <paramref name="historyCount"/> trials.</summary>
    internal static Random SuggestionRandom(int seed, int historyCount) => new(Seeds.Derive(seed, SuggestTag, historyCount));

    /// <summary>One uniform draw of every parameter, in internal representation.</summary>
    internal static double[] SampleUniform(SearchSpace space, Random random)
    {
        var values = new double[space.Count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = space.Parameters[i].SampleUniform(random);
        }

        return values;
    }

    private const int SuggestTag = 0x73756767;
}
