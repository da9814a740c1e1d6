using System.Reflection;
using NetArchTest.Rules;

namespace Amalgam.Tests.Architecture;

/// <summary>
/// The rooms of the library and the one direction their dependencies may point: a room may use only rooms before it
/// in <see cref="Order"/>, so there can be no cycle. A new room must be placed in the order before it can land.
/// </summary>
public class RoomDependencyTests
{
    /// <summary>Lowest first (the torch runtime settings → tensors → models → experts → methods → strategies → study → service); the suite builder is a client like the CLI.</summary>
    public static readonly string[] Order =
    [
        "Runtime", "Inputs", "Tensors", "Tokenizers", "Models", "Experts", "Merging", "Mixing", "Ensembling", "Training", "Routing", "Selection", "Fitting",
        "Predictors", "Evaluation", "Strategies", "Study", "Serving", "Bundled",
    ];

    static readonly Assembly Library = typeof(Amalgam.Models.CausalLM).Assembly;

    static string Room(string? ns) => ns is null || !ns.StartsWith("Amalgam.") ? "" : ns["Amalgam.".Length..].Split('.')[0];

    public static IEnumerable<object[]> Rooms() => Order.Select(r => new object[] { r });

    [Theory]
    [MemberData(nameof(Rooms))]
    public void A_room_depends_only_on_rooms_below_it(string room)
    {
        int rank = Array.IndexOf(Order, room);
        var above = Order.Skip(rank + 1).Select(r => $"Amalgam.{r}").ToArray();
        var result = Types.InAssembly(Library).That().ResideInNamespace($"Amalgam.{room}").ShouldNot().HaveDependencyOnAny(above).GetResult();
        Assert.True(result.IsSuccessful,
            $"{room} may not use [{string.Join(", ", Order.Skip(rank + 1))}], but these types do: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    [Fact]
    public void Every_namespace_of_the_library_is_in_a_known_room()
    {
        var unknown = Library.GetTypes().Select(t => t.Namespace).Where(ns => ns is not null && ns.StartsWith("Amalgam"))
            .Select(Room).Where(r => !Order.Contains(r)).Distinct().ToList();
        Assert.True(unknown.Count == 0, $"rooms not placed in RoomDependencyTests.Order: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void The_check_sees_a_real_dependency()
    {
        // Guards the guard: Strategies does use Models, so the same rule pointed the other way must fail.
        var result = Types.InAssembly(Library).That().ResideInNamespace("Amalgam.Strategies").ShouldNot().HaveDependencyOn("Amalgam.Models").GetResult();
        Assert.False(result.IsSuccessful);
    }
}
