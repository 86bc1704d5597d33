// Personal workbench data kept in the browser until the server has endpoints for it
// (to-dos, reminders, quick-navigation pins).
import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import { load, save } from '@/utils/storage'
import { todayShanghai } from '@/utils/format'

export interface Todo {
  id: string
  text: string
  done: boolean
}
export interface Reminder {
  id: string
  text: string
  date: string
}

const uid = () => Math.random().toString(36).slice(2, 10)

export const useWorkbenchStore = defineStore('workbench', () => {
  const todos = ref<Todo[]>(load<Todo[]>('todos', []))
  const reminders = ref<Reminder[]>(load<Reminder[]>('reminders', []))
  /** Paths pinned to the quick navigation bar; null = not customised yet. */
  const pins = ref<string[] | null>(load<string[] | null>('quickNav', null))

  watch(todos, (v) => save('todos', v), { deep: true })
  watch(reminders, (v) => save('reminders', v), { deep: true })
  watch(pins, (v) => save('quickNav', v), { deep: true })

  const dueReminders = computed(() => {
    const today = todayShanghai()
    return reminders.value.filter((r) => r.date <= today)
  })

  function addTodo(text: string) {
    const s = text.trim()
    if (s) todos.value.unshift({ id: uid(), text: s, done: false })
  }
  function removeTodo(id: string) {
    todos.value = todos.value.filter((t) => t.id !== id)
  }
  function addReminder(text: string, date: string) {
    const s = text.trim()
    if (s && date) {
      reminders.value.push({ id: uid(), text: s, date })
      reminders.value.sort((a, b) => a.date.localeCompare(b.date))
    }
  }
  function removeReminder(id: string) {
    reminders.value = reminders.value.filter((r) => r.id !== id)
  }

  return { todos, reminders, pins, dueReminders, addTodo, removeTodo, addReminder, removeReminder }
})
