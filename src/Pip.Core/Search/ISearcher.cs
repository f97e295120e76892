namespace Pip.Search;

/// <summary>Proposes the next parameters to try from the trials so far. The built-in searchers keep no state between calls and may be shared across threads.</summary>
public interface ISearcher
{
    /// <summary>The space the searcher draws from; every suggestion fits it.</summary>
    SearchSpace Space { get; }

    /// <summary>
    /// The parameters to try next, given the <paramref name="history"/> of trials so far (in order; failed trials
    /// included). Trials whose parameters do not fit <see cref="Space"/> are ignored. The built-in searchers are
    /// deterministic: the same seed and the same history give the same suggestion, however often it is asked.
    /// </summary>
    ParameterAssignment Suggest(IReadOnlyList<Trial> history);
}
